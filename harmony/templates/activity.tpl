% rebase('layout', title=title)
<h1>Activity</h1>
<form class="filters" method="get" action="/ui/activity">
<div class="field"><label for="kind">Kind</label>
<select id="kind" name="kind">
<option value="">everything</option>
% for k in kinds:
<option value="{{k}}"{{!' selected' if kind == k else ''}}>{{k.rstrip('.')}}</option>
% end
</select></div>
<div class="field"><label for="item">Item id</label><input type="number" id="item" name="item" min="1" value="{{params['item'] or ''}}"></div>
<div><button type="submit">Show</button></div>
</form>
% include('_activity', rows=rows)
% include('_pager', path='/ui/activity')
