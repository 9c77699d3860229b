% rebase('layout', title='Status', refresh=10)
<h1>Status <span class="badge {{'ok' if ready else 'bad'}}">{{'ready' if ready else 'not ready'}}</span></h1>
<p class="muted">Started {{ago(started_at, now)}}. This page refreshes every 10 seconds.</p>

<section>
<h2>Readiness checks</h2>
<table>
<thead><tr><th>check</th><th>state</th><th>detail</th><th>checked</th></tr></thead>
<tbody>
% for name, check in checks.items():
<tr class="{{'ok' if check['ok'] else 'bad'}}">
<td>{{name}}</td><td><span class="badge {{'ok' if check['ok'] else 'bad'}}">{{'ok' if check['ok'] else 'failing'}}</span></td>
<td>{{check['detail']}}</td><td>{{ago(check['checked_at'], now)}}</td>
</tr>
% end
</tbody>
</table>
</section>

<section>
<h2>Background tasks</h2>
<table>
<thead><tr><th>task</th><th>every</th><th>last success</th><th>next run</th><th>runs</th><th>failures</th><th>last error</th></tr></thead>
<tbody>
% for task in tasks:
<tr class="{{'bad' if task['last_error'] and (task['last_error_at'] or 0) >= (task['last_success_at'] or 0) else ''}}">
<td>{{task['name']}}</td><td>{{span(task['interval_s'])}}</td><td>{{ago(task['last_success_at'], now)}}</td>
<td>{{ago(task['next_run_at'], now)}}</td><td>{{task['runs']}}</td><td>{{task['failures']}}</td>
<td>{{task['last_error'] or ''}}</td>
</tr>
% end
</tbody>
</table>
</section>

<section>
<h2>Job queue</h2>
<table>
<thead><tr><th>type</th><th>ready</th><th>running</th><th>done</th><th>dead</th></tr></thead>
<tbody>
% for type, states in jobs['by_type'].items():
<tr class="{{'bad' if states['dead'] else ''}}"><td>{{type}}</td><td>{{states['ready']}}</td><td>{{states['running']}}</td><td>{{states['done']}}</td><td>{{states['dead']}}</td></tr>
% end
<tr class="total"><td>all</td><td>{{jobs['by_state']['ready']}}</td><td>{{jobs['by_state']['running']}}</td><td>{{jobs['by_state']['done']}}</td><td>{{jobs['by_state']['dead']}}</td></tr>
</tbody>
</table>
</section>
