<div id="wanted-table" hx-get="{{here}}" hx-trigger="sse:item throttle:2s" hx-target="this" hx-select="#wanted-table" hx-swap="outerHTML" hx-disinherit="*">
<p class="muted">{{total}} item(s) match.</p>
% if items:
<div class="scroll">
<table class="responsive">
<thead><tr><th scope="col">track</th><th scope="col">state</th><th scope="col">since</th><th scope="col">reason</th><th scope="col" class="num">attempts</th><th scope="col">next</th><th scope="col">actions</th></tr></thead>
<tbody>
% for item in items:
<tr id="item-{{item.id}}" class="{{'bad' if item.state == 'failed' else ''}}">
<td data-label="track"><a href="/ui/wanted/{{item.id}}">{{item.title}}</a><br><span class="muted small">{{', '.join(item.artists)}}{{' — ' + item.album if item.album else ''}}</span></td>
<td data-label="state">{{!badge(item.state)}}</td>
<td data-label="since"><time datetime="{{when(item.state_since)}}" title="{{when(item.state_since)}} UTC">{{ago(item.state_since, now)}}</time></td>
<td data-label="reason">{{item.reason or ''}}</td>
<td data-label="attempts" class="num">{{item.attempts}}</td>
<td data-label="next">{{item.next_action or ''}}{{(' ' + ago(item.next_action_at, now)) if item.next_action_at else ''}}</td>
<td data-label="actions">
% if can('operator'):
% for verb in offered(item.state):
<form class="inline" method="post" action="/ui/wanted/{{item.id}}/{{verb}}" hx-post="/ui/wanted/{{item.id}}/{{verb}}" hx-target="#wanted-table" hx-select="#wanted-table" hx-select-oob="#flash" hx-swap="outerHTML" hx-disinherit="*">
% include('_back')
<button type="submit" aria-label="{{labels[verb]}}: {{item.title}}">{{labels[verb]}}</button>
</form>
% end
% end
</td>
</tr>
% end
</tbody>
</table>
</div>
% end
% include('_pager', path='/ui/wanted')
</div>
