% rebase('layout', title=title)
<h1>Downloads</h1>
<div hx-ext="sse" sse-connect="/api/v1/events/stream">
% include('_downloads_live')
</div>
<section aria-labelledby="blocked-users">
<h2 id="blocked-users">Blocked users</h2>
<p class="muted small">A blocked user is never downloaded from again, whatever their files.</p>
% if not blocked:
<p class="muted">Nobody is blocked.</p>
% else:
<div class="scroll">
<table class="responsive">
<thead><tr><th scope="col">user</th><th scope="col">why</th><th scope="col">since</th><th scope="col"><span class="visually-hidden">actions</span></th></tr></thead>
<tbody>
% for row in blocked[:blocked_shown]:
<tr>
<td data-label="user"><strong>{{row['username']}}</strong></td>
<td data-label="why">{{row['reason'] or ''}}</td>
<td data-label="since">{{when(row['blocked_at'])}} UTC</td>
<td data-label="actions">
% if can('operator'):
<form class="inline" method="post" action="/ui/users/unblock">
% include('_back')
<input type="hidden" name="username" value="{{row['username']}}">
<button type="submit" aria-label="Unblock {{row['username']}}">Unblock</button>
</form>
% end
</td>
</tr>
% end
</tbody>
</table>
</div>
% if len(blocked) > blocked_shown:
<p class="muted small">The first {{blocked_shown}} are shown; <code>GET /api/v1/users/blocked</code> lists them all.</p>
% end
% end
% if can('operator'):
<form class="filters" method="post" action="/ui/users/blocked">
% include('_back')
<div class="field"><label for="block-user">Soulseek user</label>
<input type="text" id="block-user" name="username" required maxlength="200"></div>
<div class="field"><label for="block-reason">Why (optional)</label>
<input type="text" id="block-reason" name="reason" maxlength="300"></div>
<div><button type="submit" class="danger">Block</button></div>
</form>
% end
</section>
