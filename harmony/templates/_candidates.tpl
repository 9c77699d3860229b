<section aria-labelledby="item-candidates">
<h2 id="item-candidates">Candidates</h2>
% if searches:
% last = searches[0]
<p class="small">Last search: “{{last['query']}}” ({{last['variant'].replace('_', ' ')}}{{', album' if last['mode'] == 'album' else ''}}), {{ago(last['started_at'], now)}}: {{last['state']}}{{(', %d peers answered, %d acceptable' % (last['responses'] or 0, last['accepted'] or 0)) if last['state'] == 'evaluated' else ''}}{{(' (' + last['error'] + ')') if last['error'] else ''}}.
% if len(searches) > 1:
<span class="muted">Before: {{'; '.join('“%s” %s' % (s['query'], ago(s['started_at'], now)) for s in searches[1:])}}.</span>
% end
</p>
% end
% if not accepted and not rejected:
<p class="muted">No search has found a file for this item yet.</p>
% end
% if can('operator') and (accepted or rejected) and not pickable:
<p class="muted small">A candidate cannot be picked while the item is {{item.state}}{{'; unskip it first' if 'unskip' in offered(item.state) else ''}}.</p>
% end
% for group, rows in (('accepted', accepted), ('rejected', rejected)):
% if rows:
% if group == 'rejected':
<details class="rejected"{{!' open' if not accepted else ''}}><summary>Rejected: {{len(rows)}} file(s), and why</summary>
% end
<div class="scroll">
<table class="responsive candidates">
<caption class="visually-hidden">{{group.capitalize()}} candidates</caption>
<thead><tr><th scope="col" class="num">rank</th><th scope="col">user</th><th scope="col">file</th><th scope="col">quality</th><th scope="col">verdict and reasons</th><th scope="col"><span class="visually-hidden">actions</span></th></tr></thead>
<tbody>
% for c in rows:
<tr id="candidate-{{c.id}}" class="{{'bad' if not c.accepted else ''}}">
<td data-label="rank" class="num">{{c.rank if c.rank is not None else '—'}}</td>
<td data-label="user"><strong>{{c.username}}</strong>
% if c.peer:
<br><span class="muted small">{{'free slot' if c.peer.get('has_free_slot') else 'no free slot'}}, queue {{c.peer.get('queue_length', '?')}}, {{nbytes(c.peer.get('upload_speed') or 0)}}/s</span>
% end
</td>
<td data-label="file"><span class="mono">{{c.filename.replace('\\', '/').rsplit('/', 1)[-1]}}</span><br><span class="muted small mono">{{c.filename}}</span><br><span class="muted small">{{nbytes(c.size)}}{{(' · %d:%02d' % divmod(c.file['length'], 60)) if c.file.get('length') else ''}}</span></td>
<td data-label="quality">{{c.quality.removeprefix("quality ") if c.quality else "—"}}</td>
<td data-label="verdict">{{!badge('accepted' if c.accepted else 'rejected')}}
% if c.tried_at:
<span class="badge tried">tried</span>
% end
<ul class="reasons">
% for reason in c.reasons:
<li>{{reason}}</li>
% end
</ul></td>
<td data-label="actions">
% if can('operator') and pickable:
<form class="inline" method="post" action="/ui/wanted/{{item.id}}/candidates/{{c.id}}/pick">
% include('_back')
<button type="submit" aria-label="Pick {{c.username}}'s {{c.filename.replace('\\', '/').rsplit('/', 1)[-1]}}">Pick</button>
</form>
% end
</td>
</tr>
% end
</tbody>
</table>
</div>
% if group == 'rejected':
</details>
% end
% end
% end
</section>
