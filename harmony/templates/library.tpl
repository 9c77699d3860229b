% rebase('layout', title=title)
<h1>Library</h1>
<div class="cards">
<section class="card" aria-labelledby="lib-scan" id="library-scan"{{!' hx-get="/ui/library" hx-trigger="every 5s" hx-select="#library-scan" hx-target="this" hx-swap="outerHTML" hx-disinherit="*"' if scan and scan['state'] == 'running' else ''}}>
<h2 id="lib-scan">Index {{!badge(scan['state']) if scan else ''}}</h2>
<p>{{'{:,}'.format(indexed)}} file(s) in <code>{{library_dir}}</code></p>
% if scan:
% if scan['state'] == 'running':
<p>Scan {{scan['id']}} started {{ago(scan['started_at'], now)}}: {{'{:,}'.format(scan['files'])}} file(s) looked at, {{scan['rate']}} a second.</p>
% else:
<p class="small">Last scan {{ago(scan['started_at'], now)}}, {{scan['state']}} in {{countdown(scan['elapsed_s'])}}: {{'{:,}'.format(scan['files'])}} file(s) at {{scan['rate']}} a second.</p>
% end
<p class="muted small">added {{scan['added']}} · changed {{scan['changed']}} · moved {{scan['moved']}} · removed {{scan['removed']}} · unreadable {{scan['errors']}}</p>
% if scan['error']:
<p class="error-text small">{{scan['error']}}</p>
% end
% else:
<p class="muted">No scan has run yet.</p>
% end
% if can('operator'):
<form class="inline" method="post" action="/ui/library/scan">
% include('_back')
<button type="submit">Scan now</button>
</form>
% end
</section>
<section class="card" aria-labelledby="lib-backfill" id="library-backfill"{{!' hx-get="/ui/library" hx-trigger="every 5s" hx-select="#library-backfill" hx-target="this" hx-swap="outerHTML" hx-disinherit="*"' if backfill_running else ''}}>
<h2 id="lib-backfill">Backfill</h2>
<p class="small">Looks up the Spotify ids of library files that have none, so the wanted list knows them.</p>
% if runs:
<ul class="runs">
% for run in runs:
<li>Run {{run.id}} {{!badge(run.state)}} <span class="muted small">{{ago(run.started_at, now)}}</span><br>
<progress max="{{max(run.total, 1)}}" value="{{min(run.done, max(run.total, 1))}}" aria-label="Backfill run {{run.id}}: {{run.done}} of {{run.total}}">{{run.done}} of {{run.total}}</progress>
<span class="small">{{run.done}} of {{run.total}}: {{run.matched}} matched, {{run.unmatched}} not, {{run.errors}} error(s){{' · tags written' if run.write_tags else ''}}</span>
% if run.waiting_until and run.state == 'running':
<br><span class="muted small">waiting for Spotify until {{when(run.waiting_until)}} UTC</span>
% end
% if run.error:
<br><span class="error-text small">{{run.error}}</span>
% end
</li>
% end
</ul>
% else:
<p class="muted">No backfill has run yet.</p>
% end
% if can('operator'):
% if not spotify_configured:
<p class="muted small">Backfill asks Spotify: set <code>spotify.client_id</code> and <code>spotify.client_secret</code> first.</p>
% end
<form class="stack" method="post" action="/ui/library/backfill">
% include('_back')
<div><input type="checkbox" id="bf-tags" name="write_tags" value="1"{{!' checked' if write_tags_default else ''}}> <label for="bf-tags">Also write the ids into the files' tags</label></div>
<div><input type="checkbox" id="bf-retry" name="retry_unmatched" value="1"> <label for="bf-retry">Try the files again that found no match before</label></div>
<div><button type="submit">Start a backfill</button></div>
</form>
% end
</section>
</div>
% include('_library_nav')
% if not rows:
<p class="muted">{{'No album artist matches.' if q else 'The library is empty.'}}</p>
% else:
<div class="scroll">
<table class="responsive">
<thead><tr><th scope="col">album artist</th><th scope="col" class="num">albums</th><th scope="col" class="num">tracks</th></tr></thead>
<tbody>
% for row in rows:
<tr>
<td data-label="album artist"><a href="{{link('/ui/library/albums', artist=row['name'])}}">{{row['name'] or '(no album artist)'}}</a></td>
<td data-label="albums" class="num">{{row['albums']}}</td>
<td data-label="tracks" class="num"><a href="{{link('/ui/library/tracks', artist=row['name'])}}">{{row['tracks']}}</a></td>
</tr>
% end
</tbody>
</table>
</div>
% end
% include('_pager', path='/ui/library')
