% rebase('layout', title=title)
<p><a href="/ui/watchlist">Watchlist</a> ›</p>
<h1>{{artist.name}} {{!badge(artist.state)}}</h1>
<dl class="facts">
<dt>Spotify id</dt><dd><code>{{artist.spotify_id}}</code></dd>
<dt>Release groups</dt><dd>{{', '.join(artist.release_groups)}}</dd>
<dt>Wanted since</dt><dd>{{artist.since}}</dd>
<dt>Priority</dt><dd>{{artist.priority}}</dd>
<dt>Watched since</dt><dd>{{when(artist.added_at)}} UTC</dd>
<dt>Last scan</dt><dd>{{ago(artist.last_scan_at, now)}}{{': ' + artist.last_result if artist.last_result else ''}}</dd>
<dt>Next scan</dt><dd>{{'paused' if artist.paused else ago(artist.next_scan_at, now)}}</dd>
% if artist.failures:
<dt>Failures</dt><dd class="error-text">{{artist.failures}} in a row ({{artist.last_result_code}})</dd>
% end
</dl>
% if can('operator'):
<div class="filters">
<form class="inline" method="post" action="/ui/artists/{{artist.id}}">
% include('_back')
<input type="hidden" name="paused" value="{{'false' if artist.paused else 'true'}}">
<button type="submit">{{'Resume' if artist.paused else 'Pause'}}</button>
</form>
<form class="inline" method="post" action="/ui/artists/{{artist.id}}/scan">
% include('_back')
<button type="submit">Scan now</button>
</form>
<form class="inline" method="post" action="/ui/artists/{{artist.id}}">
% include('_back')
<label for="priority">Priority</label>
<input type="number" id="priority" name="priority" value="{{artist.priority}}" min="-1000" max="1000">
<button type="submit">Set</button>
</form>
<details class="confirm"><summary>Stop watching…</summary>
<form class="inline" method="post" action="/ui/artists/{{artist.id}}/unwatch">
% include('_back')
<button type="submit" class="danger">Stop watching {{artist.name}}</button>
</form>
</details>
</div>
<h2>What to want</h2>
<form class="stack" method="post" action="/ui/artists/{{artist.id}}">
% include('_back')
<input type="hidden" name="filters" value="1">
<fieldset>
<legend>Release groups</legend>
% for group in groups:
<label><input type="checkbox" name="release_groups" value="{{group}}"{{!' checked' if group in artist.release_groups else ''}}> {{group.replace('_', ' ')}}</label>
% end
</fieldset>
<div class="field"><label for="since">Releases dated on or after</label>
<input type="date" id="since" name="since" value="{{artist.since}}"></div>
<div><button type="submit">Save</button></div>
</form>
% end

<h2>Releases</h2>
% if not releases:
<p class="muted">No release known yet{{' (the first scan has not run)' if not artist.last_scan_at else ''}}.</p>
% end
% for release in releases:
<section class="card" aria-labelledby="release-{{release.id}}">
<h3 id="release-{{release.id}}">{{release.name}} <span class="muted small">{{release.album_type}}, {{release.release_date or 'undated'}}, {{release.total_tracks}} tracks</span>
% if release.wanted:
<span class="badge info">wanted</span>
% else:
<span class="badge">not wanted</span>
% end
</h3>
% items = tracks.get(release.id) or []
% if items:
<div class="scroll">
<table class="responsive">
<thead><tr><th scope="col" class="num">#</th><th scope="col">track</th><th scope="col">state</th><th scope="col">reason</th></tr></thead>
<tbody>
% for item in items:
<tr><td class="num" data-label="#">{{item.track_number or ''}}</td>
<td data-label="track"><a href="/ui/wanted/{{item.id}}">{{item.title}}</a></td>
<td data-label="state">{{!badge(item.state)}}</td>
<td data-label="reason">{{item.reason or ''}}</td></tr>
% end
</tbody>
</table>
</div>
% elif release.wanted:
<p class="muted small">Its tracks are being listed.</p>
% end
</section>
% end
% include('_pager', path='/ui/artists/%d' % artist.id)
