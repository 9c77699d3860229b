% rebase('layout', title=title)
<p><a href="/ui/playlists">Playlists</a> ›</p>
<h1>Your Spotify playlists</h1>
% if problem:
<p class="error-text">{{problem}}</p>
<p><a href="/ui/spotify">Spotify connection</a></p>
% elif not mine:
<p class="muted">Spotify lists no playlist for this account.</p>
% else:
<div class="scroll">
<table class="responsive">
<thead><tr><th scope="col">playlist</th><th scope="col" class="num">tracks</th><th scope="col">owner</th><th scope="col">follow</th></tr></thead>
<tbody>
% for playlist in mine:
<tr>
<td data-label="playlist">{{playlist['name']}}</td>
<td data-label="tracks" class="num">{{playlist['total']}}</td>
<td data-label="owner">{{playlist['owner_id']}}{{' (collaborative)' if playlist['collaborative'] else ''}}</td>
<td data-label="follow">
% if playlist['followed_id']:
<a href="/ui/playlists#playlist-{{playlist['followed_id']}}">followed</a>
% elif not playlist['readable']:
<span class="muted">not readable by this app</span>
% elif can('operator'):
<form class="inline" method="post" action="/ui/playlists">
% include('_back')
<input type="hidden" name="spotify" value="{{playlist['spotify_id']}}">
<input type="hidden" name="want_tracks" value="true">
<button type="submit" aria-label="Follow {{playlist['name']}}">Follow</button>
</form>
% end
</td>
</tr>
% end
</tbody>
</table>
</div>
% end
