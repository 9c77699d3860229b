% rebase('layout', title=title)
<h1>Jobs and tasks</h1>
<section aria-labelledby="job-totals">
<h2 id="job-totals">Jobs by type</h2>
<div class="scroll">
<table class="responsive">
<thead><tr><th scope="col">type</th>
% for s in states:
<th scope="col" class="num">{{s}}</th>
% end
</tr></thead>
<tbody>
% for kind, counts in stats['by_type'].items():
<tr class="{{'bad' if counts['dead'] else ''}}"><td data-label="type"><a href="/ui/jobs?type={{kind}}">{{kind}}</a></td>
% for s in states:
<td data-label="{{s}}" class="num">
% if counts[s]:
<a href="{{url('/ui/jobs', type=kind, state=s)}}">{{counts[s]}}</a>
% else:
0
% end
</td>
% end
</tr>
% end
<tr class="total"><td data-label="type">all</td>
% for s in states:
<td data-label="{{s}}" class="num">{{stats['by_state'][s]}}</td>
% end
</tr>
</tbody>
</table>
</div>
</section>

<section aria-labelledby="job-list">
<h2 id="job-list">{{(state + ' ') if state else ''}}{{(job_type + ' ') if job_type else ''}}jobs</h2>
<form class="filters" method="get" action="/ui/jobs">
<div class="field"><label for="f-state">State</label>
<select id="f-state" name="state"><option value="">any</option>
% for s in states:
<option value="{{s}}"{{!' selected' if state == s else ''}}>{{s}}</option>
% end
</select></div>
<div class="field"><label for="f-type">Type</label>
<select id="f-type" name="type"><option value="">any</option>
% for t in types:
<option value="{{t}}"{{!' selected' if job_type == t else ''}}>{{t}}</option>
% end
</select></div>
<div><button type="submit">Show</button></div>
</form>
% dead = state == 'dead' and can('operator')
% if not jobs:
<p class="muted">No job here.</p>
% else:
% if dead:
<form id="dead-letters" method="post" action="/ui/jobs/requeue">
% include('_back')
% end
<div class="scroll">
<table class="responsive">
<thead><tr>
% if dead:
<th scope="col"><span class="visually-hidden">choose</span></th>
% end
<th scope="col" class="num">id</th><th scope="col">type</th><th scope="col">state</th><th scope="col" class="num">attempts</th><th scope="col">run at</th><th scope="col">last error</th></tr></thead>
<tbody>
% for job in jobs:
<tr class="{{'bad' if job.state == 'dead' else ''}}">
% if dead:
<td data-label="choose"><input type="checkbox" name="ids" value="{{job.id}}" id="job-{{job.id}}" aria-label="Job {{job.id}}"></td>
% end
<td data-label="id" class="num">{{job.id}}</td>
<td data-label="type">{{job.type}}</td>
<td data-label="state">{{!badge(job.state)}}</td>
<td data-label="attempts" class="num">{{job.attempts}}/{{job.max_attempts}}</td>
<td data-label="run at">{{ago(job.run_at, now)}}</td>
<td data-label="last error">{{job.last_error or ''}}</td>
</tr>
% end
</tbody>
</table>
</div>
% if dead:
<div class="filters">
<button type="submit">Requeue the chosen</button>
<button type="submit" formaction="/ui/jobs/purge" class="danger">Purge the chosen</button>
</div>
</form>
% end
% end
% include('_pager', path='/ui/jobs')
% if can('operator') and stats['by_state']['dead']:
<h3>Every dead job of one type</h3>
% for kind, counts in stats['by_type'].items():
% if counts['dead']:
<form class="inline" method="post" action="/ui/jobs/requeue">
% include('_back')
<input type="hidden" name="type" value="{{kind}}">
<button type="submit">Requeue {{counts['dead']}} dead {{kind}}</button>
<button type="submit" formaction="/ui/jobs/purge" class="danger">Purge them</button>
</form>
% end
% end
% end
</section>

<section aria-labelledby="tasks">
<h2 id="tasks">Background tasks</h2>
<div class="scroll">
<table class="responsive">
<thead><tr><th scope="col">task</th><th scope="col">every</th><th scope="col">last success</th><th scope="col">next run</th><th scope="col" class="num">runs</th><th scope="col" class="num">failures</th><th scope="col">last error</th><th scope="col">run</th></tr></thead>
<tbody>
% for task in tasks:
% failing = task['last_error'] and (task['last_error_at'] or 0) >= (task['last_success_at'] or 0)
<tr class="{{'bad' if failing else ''}}">
<td data-label="task">{{task['name']}}</td><td data-label="every">{{span(task['interval_s'])}}</td>
<td data-label="last success">{{ago(task['last_success_at'], now)}}</td>
<td data-label="next run">{{'now' if task['triggered'] or task['running'] else ago(task['next_run_at'], now)}}</td>
<td data-label="runs" class="num">{{task['runs']}}</td><td data-label="failures" class="num">{{task['failures']}}</td>
<td data-label="last error">{{task['last_error'] or ''}}</td>
<td data-label="run">
% if can('operator'):
<form class="inline" method="post" action="/ui/tasks/{{task['name']}}/run">
% include('_back')
<button type="submit" aria-label="Run now: {{task['name']}}">Run now</button>
</form>
% end
</td>
</tr>
% end
</tbody>
</table>
</div>
</section>
