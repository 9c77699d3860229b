% # Follows the transfer frames only while the item has a download under way (or about to be).
% moving = item.state in ('found', 'queued', 'downloading') or any(not t.finished_at for t in transfers)
<section id="item-downloads" aria-labelledby="item-downloads-title"{{!' hx-get="/ui/wanted/%d" hx-trigger="sse:transfer throttle:2s" hx-target="this" hx-select="#item-downloads" hx-swap="outerHTML" hx-disinherit="*"' % item.id if moving else ''}}>
<h2 id="item-downloads-title">Downloads</h2>
% if transfers:
% include('_transfers', rows=transfers, titles={})
% else:
<p class="muted">Nothing was downloaded for this item yet.</p>
% end
</section>
