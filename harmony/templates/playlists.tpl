% rebase('layout', title=title)
<h1>Playlists</h1>
% if can('operator'):
<p><a href="/ui/playlists/mine">Follow one of your Spotify playlists</a></p>
<form class="filters" method="post" action="/ui/playlists">
% include('_back')
<div class="field"><label for="follow-spotify">…or give a playlist's Spotify link or id</label>
<input type="text" id="follow-spotify" name="spotify" required size="40" placeholder="https://open.spotify.com/playlist/…"></div>
<input type="hidden" name="want_tracks" value="true">
<div><button type="submit" class="primary">Follow</button></div>
</form>
% end
% if not playlists:
<p class="muted">No playlist is followed yet.</p>
% end
% for playlist in playlists:
<section class="card" id="playlist-{{playlist.id}}" aria-labelledby="playlist-name-{{playlist.id}}">
<h2 id="playlist-name-{{playlist.id}}">{{playlist.name}}
% if playlist.stale:
<span class="badge stale">stale</span>
% end
% if not playlist.readable:
<span class="badge bad">unreadable</span>
% end
</h2>
<p class="muted small">{{playlist.total}} tracks · owner {{playlist.owner_id}}{{' · collaborative' if playlist.collaborative else ''}} ·
last synced {{ago(playlist.last_success_at, now)}} · next sync {{ago(playlist.next_sync_at, now)}}</p>
% if playlist.last_result:
<p class="{{'error-text' if playlist.failures else ''}}">Last sync: {{playlist.last_result}}</p>
% end
<ul class="counts">
% for state, n in counts[playlist.id].items():
% if n:
<li><a href="/ui/wanted?playlist={{playlist.id}}&amp;state={{state}}">{{n}} {{!badge(state)}}</a></li>
% end
% end
</ul>
<p>Its tracks are {{'' if playlist.want_tracks else 'not '}}wanted.</p>
% if can('operator'):
<div class="filters">
<form class="inline" method="post" action="/ui/playlists/{{playlist.id}}">
% include('_back')
<input type="hidden" name="want_tracks" value="{{'false' if playlist.want_tracks else 'true'}}">
<button type="submit">{{'Stop wanting its tracks' if playlist.want_tracks else 'Want its tracks'}}</button>
</form>
<form class="inline" method="post" action="/ui/playlists/{{playlist.id}}/sync">
% include('_back')
<button type="submit">Sync now</button>
</form>
<details class="confirm"><summary>Unfollow…</summary>
<form class="inline" method="post" action="/ui/playlists/{{playlist.id}}/unfollow">
% include('_back')
<button type="submit" class="danger">Unfollow {{playlist.name}}</button>
</form>
</details>
</div>
% end
</section>
% end
% include('_pager', path='/ui/playlists')
