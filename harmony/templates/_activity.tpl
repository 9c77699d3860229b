% if not rows:
<p class="muted">Nothing has happened yet.</p>
% else:
<div class="scroll">
<table class="responsive">
<thead><tr><th scope="col">when</th><th scope="col">what</th><th scope="col">concerns</th><th scope="col">change</th><th scope="col">reason</th></tr></thead>
<tbody>
% for row in rows:
<tr>
<td data-label="when"><time datetime="{{when(row['at'])}}" title="{{when(row['at'])}} UTC">{{ago(row['at'], now)}}</time></td>
<td data-label="what"><code>{{row['kind']}}</code></td>
<td data-label="concerns">
% if row['link']:
<a href="{{row['link']}}">{{row['subject']}}</a>
% else:
{{row['subject']}}
% end
</td>
<td data-label="change">{{row['change']}}</td>
<td data-label="reason">{{row['message']}}
% if row['code']:
<span class="muted small">({{row['code']}})</span>
% end
</td>
</tr>
% end
</tbody>
</table>
</div>
% end
