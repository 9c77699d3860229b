% rebase('layout', title=title)
<h1>Settings</h1>
<p>These options can change while Harmony runs; the others are set in the configuration file
(see <code>docs/configuration.md</code>). A value set by an environment variable or a flag
cannot be changed here.</p>
% if errors:
<p class="flash error" role="alert">Nothing was saved: {{len(errors)}} value(s) below need fixing.</p>
% end
<form class="stack" method="post" action="/ui/settings" novalidate>
% include('_back')
% for row in rows:
% key = row['key']
% error = errors.get(key)
<div class="field">
<label for="opt-{{key}}">{{key}}</label>
% if row['kind'] == 'choice' or row['kind'] == 'boolean':
% choices = row['choices'] or ['true', 'false']
<select id="opt-{{key}}" name="{{key}}"{{!' disabled' if not row['editable'] or not can('admin') else ''}} aria-describedby="help-{{key}}{{(' error-' + key) if error else ''}}"{{!' aria-invalid="true"' if error else ''}}>
% for choice in choices:
<option value="{{choice}}"{{!' selected' if row['text'] == choice else ''}}>{{choice}}</option>
% end
</select>
% else:
<input type="text" id="opt-{{key}}" name="{{key}}" value="{{row['text']}}"{{!' disabled' if not row['editable'] or not can('admin') else ''}} aria-describedby="help-{{key}}{{(' error-' + key) if error else ''}}"{{!' aria-invalid="true"' if error else ''}}>
% end
% if error:
<span class="error-text" id="error-{{key}}">{{error}}</span>
% end
<span class="help" id="help-{{key}}">{{row['help']}} ({{row['kind']}}{{(', from %s' % row['minimum']) if row['minimum'] is not None else ''}}{{(' to %s' % row['maximum']) if row['maximum'] is not None else ''}}) · source: {{row['source']}}</span>
% if row['editable'] and can('admin') and row['source'].startswith('settings'):
<label class="small"><input type="checkbox" name="reset:{{key}}" value="1"> back to the file's or the default value</label>
% end
</div>
% end
% if can('admin'):
<div><button type="submit" class="primary">Save</button></div>
% else:
<p class="muted">Changing them needs the admin role.</p>
% end
</form>
