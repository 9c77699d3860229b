% rebase('layout', title=title)
<h1>Dashboard</h1>
<div hx-ext="sse" sse-connect="/api/v1/events/stream">
% include('_dashboard_live')
</div>
