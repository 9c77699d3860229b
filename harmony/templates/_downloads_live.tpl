<div id="downloads-live" hx-get="{{here}}" hx-trigger="sse:transfer throttle:1s, sse:item throttle:2s{{', every 15s' if active else ''}}" hx-target="this" hx-select="#downloads-live" hx-swap="outerHTML" hx-disinherit="*">
<ul class="counts" aria-label="Downloads under way by state">
% for state, n in counts.items():
% if n:
<li>{{n}} {{!badge(state)}}</li>
% end
% end
% if not any(counts.values()):
<li class="muted">Nothing is downloading.</li>
% end
<li class="muted small">Search budget: {{budget['remaining']}} of {{budget['limit']}} left</li>
</ul>
% if item:
<p>Downloads of <a href="/ui/wanted/{{item}}">{{titles.get(item, 'item %d' % item)}}</a> only · <a href="/ui/downloads">all downloads</a></p>
% end
% if not paged:
<section aria-labelledby="downloads-active">
<h2 id="downloads-active">Under way</h2>
% if active:
% include('_transfers', rows=active)
% else:
<p class="muted">No download is under way.</p>
% end
</section>
% end
<section aria-labelledby="downloads-recent">
<h2 id="downloads-recent">Finished</h2>
% if recent:
% include('_transfers', rows=recent)
% else:
<p class="muted">None yet.</p>
% end
% include('_pager', path='/ui/downloads')
</section>
</div>
