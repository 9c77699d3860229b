% rebase('layout', title=title)
<p><a href="/ui/wanted">Wanted</a> ›</p>
<div hx-ext="sse" sse-connect="/api/v1/events/stream">
% include('_wanted_item_live')
</div>
