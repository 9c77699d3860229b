<div id="wanted-live" hx-get="/ui/wanted/{{item.id}}" hx-trigger="sse:item throttle:2s" hx-target="this" hx-select="#wanted-live" hx-swap="outerHTML" hx-disinherit="*">
<h1>{{item.title}} {{!badge(item.state)}}</h1>
<dl class="facts">
<dt>Artists</dt><dd>{{', '.join(item.artists)}}</dd>
<dt>Album</dt><dd>{{item.album or '—'}}{{(' (track %s of %s)' % (item.track_number, item.track_total)) if item.track_number else ''}}</dd>
<dt>State</dt><dd>{{item.state.replace('_', ' ')}} since {{when(item.state_since)}} UTC ({{ago(item.state_since, now)}})</dd>
<dt>Why</dt><dd>{{item.reason or '—'}}{{(' (' + item.reason_code + ')') if item.reason_code else ''}}</dd>
<dt>Attempts</dt><dd>{{item.attempts}}</dd>
<dt>Next</dt><dd>{{item.next_action or '—'}}{{(' ' + ago(item.next_action_at, now)) if item.next_action_at else ''}}</dd>
<dt>Priority</dt><dd>{{item.priority}}</dd>
<dt>Length</dt><dd>{{'%d:%02d' % divmod(item.duration_ms // 1000, 60) if item.duration_ms else '—'}}</dd>
<dt>Spotify</dt><dd><code>{{item.spotify_id or '—'}}</code>{{(' · ISRC ' + item.isrc) if item.isrc else ''}}</dd>
</dl>
% if can('operator'):
<div class="filters">
% for verb in offered(item.state):
<form class="inline" method="post" action="/ui/wanted/{{item.id}}/{{verb}}">
% include('_back')
<button type="submit"{{!' class="danger"' if verb == 'wrong' else ''}}>{{labels[verb]}}</button>
</form>
% end
<form class="inline" method="post" action="/ui/wanted/{{item.id}}">
% include('_back')
<label for="item-priority">Priority</label>
<input type="number" id="item-priority" name="priority" value="{{item.priority}}" min="-1000" max="1000">
<button type="submit">Set</button>
</form>
</div>
% if 'search' in offered(item.state):
<p class="muted small">Search budget: {{budget['remaining']}} of {{budget['limit']}} searches left in this {{countdown(budget['window_s'])}} window{{(', the next free in ' + countdown(budget['next_free_at'] - now)) if not budget['remaining'] else ''}}.</p>
% end
% end
% include('_candidates')
% include('_item_downloads')
<h2>Wanted by</h2>
<ul>
% for source in item.sources:
<li>
% if source['kind'] == 'release':
% if source['artist_id'] in artist_names:
a release of <a href="/ui/artists/{{source['artist_id']}}">{{artist_names[source['artist_id']]}}</a>
% else:
a release of an artist no longer watched
% end
% elif source['kind'] == 'playlist':
the playlist <a href="/ui/playlists#playlist-{{source['playlist_id']}}">{{playlist_names.get(source['playlist_id'], source['playlist_id'])}}</a>
% else:
a manual request
% end
<span class="muted small">since {{when(source['added_at'])}} UTC</span>
</li>
% end
% if not item.sources:
<li class="muted">nothing any more</li>
% end
</ul>
<h2>History</h2>
% include('_activity', rows=history)
</div>
