<section id="dashboard-transfers" aria-labelledby="dash-transfers" hx-get="/ui/" hx-trigger="sse:transfer throttle:2s" hx-target="this" hx-select="#dashboard-transfers" hx-swap="outerHTML" hx-disinherit="*">
<h2 id="dash-transfers">Downloads under way <span class="muted small">({{sum(transfer_counts.values())}})</span></h2>
% if transfers:
<ul class="transfers-mini">
% for d in transfers:
% due = give_up(d)
<li><span class="mono">{{leaf(d.filename)}}</span> <span class="muted small">from {{d.username}}{{(' for ' + titles[d.item_id]) if d.item_id in titles else ''}}</span><br>
<progress max="100" value="{{'%.1f' % d.percent}}" aria-label="{{leaf(d.filename)}}: {{'%.0f' % d.percent}}%">{{'%.0f' % d.percent}}%</progress>
<span class="small">{{!badge(d.state)}} {{'%.0f' % d.percent}}% of {{nbytes(d.size)}}{{(' · %s/s' % nbytes(d.speed)) if d.speed else ''}}{{(' · place %d' % d.place) if d.place is not None else ''}}{{(' · gives up in ' + countdown(due[0] - now)) if due and due[0] > now else ''}}</span></li>
% end
</ul>
% else:
<p class="muted">Nothing is downloading.</p>
% end
<p><a href="/ui/downloads">{{'All downloads' if not more_transfers else 'More downloads'}}</a></p>
</section>
