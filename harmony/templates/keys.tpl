% rebase('layout', title=title)
<h1>API keys</h1>
% if created:
<section class="card" aria-labelledby="new-key">
<h2 id="new-key">New key “{{created['name']}}” ({{created['role']}})</h2>
<p>Copy it now: it is shown only this once.</p>
<p class="key-once" id="created-key">{{created['key']}}</p>
% if created.get('expires_at'):
<p>It expires on {{when(created['expires_at'])}} UTC.</p>
% end
% previous = created.get('previous')
% if previous:
<p>It replaces key {{previous['id']}}, which keeps working
% if previous['expires_at']:
until {{when(previous['expires_at'])}} UTC.
% else:
until you revoke it.
% end
</p>
% end
</section>
% end
% if error:
<p class="flash error" role="alert">{{error}}</p>
% end
<h2>Create a key</h2>
<form class="filters" method="post" action="/ui/keys" hx-boost="false">
% include('_back')
<div class="field"><label for="key-name">Name</label><input type="text" id="key-name" name="name" required maxlength="100"></div>
<div class="field"><label for="key-role">Role</label>
<select id="key-role" name="role">
% for role in roles:
<option value="{{role}}">{{role}}</option>
% end
</select></div>
<div class="field"><label for="key-expires">Expires</label>
<select id="key-expires" name="expires">
<option value="">never</option>
% for lifetime in lifetimes:
<option value="{{lifetime}}">in {{lifetime[:-1]}} days</option>
% end
</select></div>
<div><button type="submit" class="primary">Create</button></div>
</form>
<h2>Keys</h2>
<div class="scroll">
<table class="responsive">
<thead><tr><th scope="col" class="num">id</th><th scope="col">name</th><th scope="col">role</th><th scope="col">key</th><th scope="col">created</th><th scope="col">last used</th><th scope="col">expires</th><th scope="col">state</th></tr></thead>
<tbody>
% for key in keys:
<tr>
<td data-label="id" class="num">{{key['id']}}</td><td data-label="name">{{key['name']}}</td><td data-label="role">{{key['role']}}</td>
<td data-label="key"><code>hmy_{{key['prefix']}}_…</code></td>
<td data-label="created">{{when(key['created_at'])}}</td><td data-label="last used">{{ago(key['last_used_at'], now)}}</td>
<td data-label="expires">{{when(key['expires_at']) if key['expires_at'] else 'never'}}</td>
<td data-label="state">
% if key['revoked_at']:
<span class="badge">revoked</span>
% elif not active(key, now):
<span class="badge">expired</span>
% else:
% if key['id'] in successors:
<span class="badge">rotated: key {{successors[key['id']]}}</span>
% else:
<details class="confirm"><summary>Rotate…</summary>
<form class="inline" method="post" action="/ui/keys/{{key['id']}}/rotate" hx-boost="false">
% include('_back', back='/ui/keys')
<label for="grace-{{key['id']}}">Old key keeps working</label>
<select id="grace-{{key['id']}}" name="grace">
<option value="">until revoked</option>
% for grace in graces:
<option value="{{grace}}">{{'no longer' if grace == '0' else 'for ' + grace}}</option>
% end
</select>
<button type="submit">Rotate {{key['name']}}</button>
</form>
</details>
% end
<details class="confirm"><summary>Revoke…</summary>
<form class="inline" method="post" action="/ui/keys/{{key['id']}}/revoke">
% include('_back', back='/ui/keys')
<button type="submit" class="danger">Revoke {{key['name']}}</button>
</form>
</details>
% end
</td>
</tr>
% end
</tbody>
</table>
</div>
% include('_pager', path='/ui/keys')
