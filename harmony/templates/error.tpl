% rebase('layout', title=str(status))
<h1>{{status}}</h1>
<p>{{message}}</p>
<p class="muted">code: {{code}}</p>
<p><a href="/ui/">Back to the dashboard</a></p>
