<section id="item-downloads" aria-labelledby="item-downloads-title" hx-get="/ui/wanted/{{item.id}}" hx-trigger="sse:transfer throttle:2s" hx-target="this" hx-select="#item-downloads" hx-swap="outerHTML" hx-disinherit="*">
<h2 id="item-downloads-title">Downloads</h2>
% if transfers:
% include('_transfers', rows=transfers, titles={})
% else:
<p class="muted">Nothing was downloaded for this item yet.</p>
% end
</section>
