<div id="live" hx-get="/ui/" hx-trigger="sse:item throttle:2s, sse:artist throttle:2s, sse:playlist throttle:2s" hx-target="this" hx-select="#live" hx-swap="outerHTML" hx-disinherit="*">
<div class="cards">
% for name, check in upstreams:
<section class="card" aria-labelledby="health-{{name}}">
<h2 id="health-{{name}}">{{'Soulseek (slskd)' if name == 'slskd' else 'Spotify'}}
% if check is None:
{{!badge('unknown')}}
% elif check['ok']:
{{!badge('ok')}}
% else:
<span class="badge bad">failing</span>
% end
</h2>
% if check:
<p class="{{'' if check['ok'] else 'error-text'}}">{{check['detail']}}</p>
<p class="muted small">checked {{ago(check['checked_at'], now)}}</p>
% end
</section>
% end
<section class="card" aria-labelledby="dash-budget">
<h2 id="dash-budget">Search budget</h2>
<p><meter id="budget-gauge" min="0" max="{{budget['limit']}}" low="{{max(1, budget['limit'] // 5)}}" high="{{max(1, budget['limit'] // 2)}}" optimum="{{budget['limit']}}" value="{{budget['remaining']}}">{{budget['remaining']}} of {{budget['limit']}}</meter>
<label for="budget-gauge"><strong>{{budget['remaining']}}</strong> of {{budget['limit']}} searches left</label></p>
<p class="muted small">{{budget['spent']}} spent in the last {{countdown(budget['window_s'])}}{{('; the next is free in ' + countdown(budget['next_free_at'] - now)) if not budget['remaining'] else ''}}. More searches than this get a Soulseek account banned.</p>
</section>
<section class="card" aria-labelledby="dash-artists">
<h2 id="dash-artists">Watched artists</h2>
<ul class="counts">
% for state, n in artists.items():
<li>{{n}} {{state.replace('_', ' ')}}</li>
% end
</ul>
<p><a href="/ui/watchlist">Watchlist</a></p>
</section>
<section class="card" aria-labelledby="dash-playlists">
<h2 id="dash-playlists">Playlists</h2>
<p>{{followed}} followed
% if stale:
· <span class="badge stale">{{stale}} stale</span>
% end
</p>
<p><a href="/ui/playlists">Playlists</a></p>
</section>
<section class="card" aria-labelledby="dash-jobs">
<h2 id="dash-jobs">Jobs</h2>
<ul class="counts">
% for state, n in jobs.items():
<li>{{n}} {{state}}</li>
% end
</ul>
% if jobs.get('dead'):
<p><a href="/ui/jobs?state=dead">{{jobs['dead']}} dead letter(s)</a></p>
% else:
<p><a href="/ui/jobs">Jobs and tasks</a></p>
% end
</section>
</div>

% include('_dashboard_transfers')

<section aria-labelledby="dash-items">
<h2 id="dash-items">Wanted items by state <span class="muted small">({{total}} in all)</span></h2>
<ul class="counts">
% for state, n in counts.items():
<li><a href="/ui/wanted?state={{state}}">{{n}} <span class="badge {{state}}">{{state.replace('_', ' ')}}</span></a></li>
% end
</ul>
</section>

<section aria-labelledby="dash-chart">
<h2 id="dash-chart">Items done per day</h2>
<svg class="chart" viewBox="0 0 {{chart['width']}} {{chart['height']}}" role="img" aria-labelledby="chart-title">
<title id="chart-title">Items done per day from {{chart['first']}} to {{chart['last']}}: {{chart['total']}} in all, at most {{chart['top']}} on one day</title>
<line class="axis" x1="{{chart['left']}}" y1="{{chart['height'] - chart['bottom']}}" x2="{{chart['width']}}" y2="{{chart['height'] - chart['bottom']}}"/>
<text x="0" y="12">{{chart['top']}}</text>
<text x="0" y="{{chart['height'] - chart['bottom']}}">0</text>
% for bar in chart['bars']:
<rect class="bar" x="{{bar['x']}}" y="{{bar['y']}}" width="{{bar['w']}}" height="{{bar['h']}}"><title>{{bar['day']}}: {{bar['n']}}</title></rect>
% end
<text x="{{chart['left']}}" y="{{chart['height'] - 4}}">{{chart['first']}}</text>
<text x="{{chart['width']}}" y="{{chart['height'] - 4}}" text-anchor="end">{{chart['last']}}</text>
</svg>
</section>

<section aria-labelledby="dash-recent">
<h2 id="dash-recent">Recent activity</h2>
% include('_activity', rows=recent)
<p><a href="/ui/activity">All activity</a></p>
</section>
</div>
