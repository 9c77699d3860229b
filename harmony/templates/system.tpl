% rebase('layout', title=title)
<h1>System <span class="badge {{'ok' if ready else 'bad'}}">{{'ready' if ready else 'not ready'}}</span></h1>
<dl class="facts">
<dt>Version</dt><dd>{{version}}</dd>
<dt>Started</dt><dd>{{when(started_at)}} UTC ({{ago(started_at, now)}})</dd>
<dt>Schema version</dt><dd>{{schema}}</dd>
<dt>Data directory</dt><dd><code>{{data_dir}}</code></dd>
<dt>Library</dt><dd><code>{{library_dir}}</code></dd>
</dl>

<h2>Readiness checks</h2>
<div class="scroll">
<table class="responsive">
<thead><tr><th scope="col">check</th><th scope="col">state</th><th scope="col">detail</th><th scope="col">checked</th></tr></thead>
<tbody>
% for name, check in checks.items():
<tr class="{{'' if check['ok'] else 'bad'}}">
<td data-label="check">{{name}}</td>
<td data-label="state"><span class="badge {{'ok' if check['ok'] else 'bad'}}">{{'ok' if check['ok'] else 'failing'}}</span></td>
<td data-label="detail">{{check['detail']}}</td>
<td data-label="checked">{{ago(check['checked_at'], now)}}</td>
</tr>
% end
</tbody>
</table>
</div>

<h2>Upstream cooldowns</h2>
% if cooldowns:
<ul>
% for service, info in cooldowns.items():
<li>{{service}}: until {{when(info['until'])}} UTC ({{ago(info['until'], now)}}): {{info['reason']}}</li>
% end
</ul>
% else:
<p class="muted">None: Spotify and slskd may be asked at once.</p>
% end

<h2>Sessions</h2>
<p>{{sessions}} web UI session(s) open.</p>
% if can('admin'):
<form method="post" action="/ui/sessions/end-all" hx-boost="false">
% include('_back')
<button type="submit" class="danger">Log out everywhere</button>
<span class="muted small">Ends every session of every key, this one too.</span>
</form>
% end
