% rebase('layout', title=title)
<h1>Watchlist</h1>
<p class="muted">
{{' · '.join('%d %s' % (n, state.replace('_', ' ')) for state, n in counts.items())}}
</p>
% if can('operator'):
<section aria-labelledby="add-artist">
<h2 id="add-artist">Watch an artist</h2>
<form class="filters" method="get" action="/ui/watchlist" role="search">
<div class="field"><label for="q">Search Spotify for an artist</label>
<input type="search" id="q" name="q" value="{{query or ''}}" placeholder="artist name"></div>
<div><button type="submit">Search</button></div>
</form>
% if search_error:
<p class="error-text">{{search_error}}</p>
% elif results is not None:
% if not results:
<p class="muted">No artist matches “{{query}}”.</p>
% else:
<ul id="search-results">
% for found in results:
<li>
% if found['watched_id']:
<a href="/ui/artists/{{found['watched_id']}}">{{found['name']}}</a> <span class="muted">(watched)</span>
% else:
<form class="inline" method="post" action="/ui/watchlist">
% include('_back', back=url('/ui/watchlist'))
<input type="hidden" name="spotify" value="{{found['id']}}">
<span>{{found['name']}}</span> <button type="submit" aria-label="Watch {{found['name']}}">Watch</button>
</form>
% end
</li>
% end
</ul>
% end
% end
<form class="filters" method="post" action="/ui/watchlist">
% include('_back', back=url('/ui/watchlist'))
<div class="field"><label for="spotify">…or give its Spotify link or id</label>
<input type="text" id="spotify" name="spotify" required placeholder="https://open.spotify.com/artist/…" size="40"></div>
<div class="field"><label for="add-priority">Priority</label>
<input type="number" id="add-priority" name="priority" value="0" min="-1000" max="1000"></div>
<div><button type="submit" class="primary">Watch</button></div>
</form>
</section>
% end

<section aria-labelledby="watched">
<h2 id="watched">Watched artists</h2>
<form class="filters" method="get" action="/ui/watchlist">
<div class="field"><label for="f-paused">Paused</label>
<select id="f-paused" name="paused">
<option value="">either</option>
<option value="true"{{!' selected' if params['paused'] == 'true' else ''}}>paused</option>
<option value="false"{{!' selected' if params['paused'] == 'false' else ''}}>not paused</option>
</select></div>
<div class="field"><label for="f-failing">Last scan</label>
<select id="f-failing" name="failing">
<option value="">either</option>
<option value="true"{{!' selected' if params['failing'] == 'true' else ''}}>failing</option>
<option value="false"{{!' selected' if params['failing'] == 'false' else ''}}>ok</option>
</select></div>
<div class="field"><label for="f-sort">Sort by</label>
<select id="f-sort" name="sort">
% for option in sorts:
<option value="{{option}}"{{!' selected' if sort == option else ''}}>{{option.replace('_', ' ')}}</option>
% end
</select></div>
<div><button type="submit">Show</button></div>
</form>
% if not artists:
<p class="muted">No artist here yet.</p>
% else:
<div class="scroll">
<table class="responsive">
<thead><tr><th scope="col">artist</th><th scope="col">state</th><th scope="col">priority</th><th scope="col">last scan</th><th scope="col">next scan</th><th scope="col">actions</th></tr></thead>
<tbody>
% for artist in artists:
% include('_watchlist_row', artist=artist)
% end
</tbody>
</table>
</div>
% end
% include('_pager', path='/ui/watchlist')
</section>
