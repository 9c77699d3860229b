% rebase('layout', title=title)
<h1>Wanted</h1>
<form class="filters" method="get" action="/ui/wanted" role="search" aria-label="Filter the wanted items">
<div class="field"><label for="f-state">State</label>
<select id="f-state" name="state">
<option value="">any</option>
% for state in states:
<option value="{{state}}"{{!' selected' if chosen['state'] and list(chosen['state']) == [state] else ''}}>{{state.replace('_', ' ')}}</option>
% end
% if chosen['state'] and len(chosen['state']) > 1:
<option value="{{params['state']}}" selected>{{params['state'].replace(',', ', ')}}</option>
% end
</select></div>
<div class="field"><label for="f-source">Wanted by</label>
<select id="f-source" name="source">
<option value="">anything</option>
% for source in sources:
<option value="{{source}}"{{!' selected' if chosen['source_kind'] == source else ''}}>{{source}}</option>
% end
</select></div>
<div class="field"><label for="f-q">Title, artist or album</label>
<input type="search" id="f-q" name="q" value="{{chosen['q'] or ''}}"></div>
<div class="field"><label for="f-sort">Order</label>
<select id="f-sort" name="sort">
% for option in sorts:
<option value="{{option}}"{{!' selected' if sort == option else ''}}>{{ {'priority': 'backlog order', 'age': 'oldest first', 'changed': 'latest change first'}[option] }}</option>
% end
</select></div>
% for hidden in ('artist', 'playlist', 'release'):
% if params[hidden]:
<input type="hidden" name="{{hidden}}" value="{{params[hidden]}}">
% end
% end
<div><button type="submit">Show</button> <a href="/ui/wanted">Clear</a></div>
</form>
<div hx-ext="sse" sse-connect="/api/v1/events/stream">
% include('_wanted_table')
</div>
% if can('operator'):
<section aria-labelledby="want-more">
<h2 id="want-more">Want a track or an album</h2>
<form class="filters" method="post" action="/ui/wanted">
% include('_back')
<div class="field"><label for="want-spotify">Spotify link or id of a track or an album</label>
<input type="text" id="want-spotify" name="spotify" required size="40" placeholder="https://open.spotify.com/track/…"></div>
<div><button type="submit" class="primary">Want it</button></div>
</form>
</section>
% end
