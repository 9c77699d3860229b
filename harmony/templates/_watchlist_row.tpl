<tr id="artist-{{artist.id}}" class="{{'bad' if artist.failures else ''}}">
<td data-label="artist"><a href="/ui/artists/{{artist.id}}">{{artist.name}}</a><br><span class="muted small">{{', '.join(artist.release_groups)}} since {{artist.since}}</span></td>
<td data-label="state">{{!badge(artist.state)}}</td>
<td data-label="priority">
% if can('operator'):
<form class="inline" method="post" action="/ui/artists/{{artist.id}}" hx-post="/ui/artists/{{artist.id}}" hx-target="#artist-{{artist.id}}" hx-select="#artist-{{artist.id}}" hx-select-oob="#flash" hx-swap="outerHTML">
% include('_back')
<label class="visually-hidden" for="priority-{{artist.id}}">Priority of {{artist.name}}</label>
<input type="number" id="priority-{{artist.id}}" name="priority" value="{{artist.priority}}" min="-1000" max="1000">
<button type="submit">Set</button>
</form>
% else:
{{artist.priority}}
% end
</td>
<td data-label="last scan">{{ago(artist.last_scan_at, now)}}
% if artist.last_result:
<br><span class="small {{'error-text' if artist.failures else 'muted'}}">{{artist.last_result}}</span>
% end
</td>
<td data-label="next scan">{{'paused' if artist.paused else ago(artist.next_scan_at, now)}}</td>
<td data-label="actions">
% if can('operator'):
<form class="inline" method="post" action="/ui/artists/{{artist.id}}" hx-post="/ui/artists/{{artist.id}}" hx-target="#artist-{{artist.id}}" hx-select="#artist-{{artist.id}}" hx-select-oob="#flash" hx-swap="outerHTML">
% include('_back')
<input type="hidden" name="paused" value="{{'false' if artist.paused else 'true'}}">
<button type="submit" aria-label="{{'Resume' if artist.paused else 'Pause'}} {{artist.name}}">{{'Resume' if artist.paused else 'Pause'}}</button>
</form>
% end
</td>
</tr>
