% rebase('layout', title=title)
<h1>Quarantine</h1>
<p class="muted">Files the import set aside: not the audio they should be, or the worse of two copies of one recording. A file stays here until it is retried or deleted; a file that failed verification is never downloaded again.</p>
% if not rows:
<p class="muted">Nothing is quarantined.</p>
% else:
<div class="scroll">
<table class="responsive">
<thead><tr><th scope="col">file</th><th scope="col">reason</th><th scope="col">item</th><th scope="col">from</th><th scope="col" class="num">size</th><th scope="col">when</th><th scope="col"><span class="visually-hidden">actions</span></th></tr></thead>
<tbody>
% for row in rows:
<tr id="held-{{row['id']}}" class="{{'bad' if row['id'] in errors else ''}}">
<td data-label="file"><span class="mono">{{row['path']}}</span>
% if not row['present']:
<br><span class="error-text small">the file is no longer there</span>
% end
</td>
<td data-label="reason">{{!badge(row['code'])}} {{row['reason']}}</td>
<td data-label="item">
% if row['item_id'] in titles:
<a href="/ui/wanted/{{row['item_id']}}">{{titles[row['item_id']]}}</a>
% else:
<span class="muted">none</span>
% end
</td>
<td data-label="from">
% if row['username']:
<strong>{{row['username']}}</strong><br><span class="muted small mono">{{row['filename'] or ''}}</span>
% else:
<span class="muted">the library</span>
% end
</td>
<td data-label="size" class="num">{{nbytes(row['size'])}}</td>
<td data-label="when"><time datetime="{{when(row['at'])}}" title="{{when(row['at'])}} UTC">{{ago(row['at'], now)}}</time></td>
<td data-label="actions">
% if can('operator'):
<form class="inline" method="post" action="/ui/quarantine/{{row['id']}}/retry">
% include('_back')
<button type="submit" aria-label="Retry importing {{row['path']}}">Retry</button>
</form>
<details class="confirm"><summary>Delete…</summary>
<form class="inline" method="post" action="/ui/quarantine/{{row['id']}}/delete">
% include('_back')
<button type="submit" class="danger" aria-label="Delete {{row['path']}} for good">Delete for good</button>
</form>
</details>
% end
% if row['id'] in errors:
<p class="error-text small" role="alert" id="held-{{row['id']}}-error">{{errors[row['id']]}}</p>
% end
</td>
</tr>
% end
</tbody>
</table>
</div>
% end
% include('_pager', path='/ui/quarantine')
