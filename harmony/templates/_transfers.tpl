% # A table of transfers: rows, titles (item id -> title; {} to leave the item out), give_up, leaf, now.
% show_item = bool(get('titles'))
% live = any(not d.finished_at for d in rows)
<div class="scroll">
<table class="responsive transfers">
<thead><tr><th scope="col">file</th><th scope="col">state</th><th scope="col">progress</th>
% if live:
<th scope="col" class="num">speed</th><th scope="col" class="num">queue place</th><th scope="col">gives up</th><th scope="col"><span class="visually-hidden">actions</span></th>
% end
</tr></thead>
<tbody>
% for d in rows:
% refused = (d.reason or '').startswith('file refused')
<tr id="transfer-{{d.id}}" class="{{'bad' if refused or (d.outcome and d.outcome != 'succeeded') else ''}}">
<td data-label="file"><span class="mono">{{leaf(d.filename)}}</span><br><span class="muted small">from <strong>{{d.username}}</strong>
% if show_item and d.item_id in titles:
 · for <a href="/ui/wanted/{{d.item_id}}">{{titles[d.item_id]}}</a>
% end
</span></td>
<td data-label="state">{{!badge(d.state)}}
% if d.finished_at:
<br><span class="small {{'error-text' if refused or d.outcome != 'succeeded' else 'muted'}}">{{d.reason or d.outcome}}</span>
<br><span class="muted small">{{ago(d.finished_at, now)}}</span>
% elif d.reason:
<br><span class="muted small">{{d.reason}}</span>
% end
</td>
<td data-label="progress"><progress max="100" value="{{'%.1f' % d.percent}}" aria-label="{{leaf(d.filename)}}: {{'%.0f' % d.percent}}%">{{'%.0f' % d.percent}}%</progress>
<br><span class="small">{{'%.0f' % d.percent}}% · {{nbytes(d.bytes)}} of {{nbytes(d.size)}}</span></td>
% if live:
% due = give_up(d)
<td data-label="speed" class="num">{{(nbytes(d.speed) + '/s') if d.speed and not d.finished_at else '—'}}</td>
<td data-label="queue place" class="num">{{d.place if d.place is not None else '—'}}</td>
<td data-label="gives up">
% if due:
% left = due[0] - now
<time datetime="{{when(due[0])}}" title="{{when(due[0])}} UTC">{{('in ' + countdown(left)) if left > 0 else 'at the next check'}}</time><br><span class="muted small">{{due[1]}}</span>
% else:
—
% end
</td>
<td data-label="actions">
% if can('operator') and not d.finished_at:
<form class="inline" method="post" action="/ui/downloads/{{d.id}}/cancel">
% include('_back')
<button type="submit" aria-label="Cancel {{leaf(d.filename)}} from {{d.username}}">Cancel</button>
</form>
% end
</td>
% end
</tr>
% end
</tbody>
</table>
</div>
