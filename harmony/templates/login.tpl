% rebase('layout', title=title)
<h1>Log in</h1>
<p>Harmony has no passwords: log in with an API key. <code>harmony apikey create --name me --role admin</code>
makes one; the first start of <code>harmony serve</code> printed an admin key.</p>
% if get('error'):
<p class="flash error" role="alert">{{error}}</p>
% end
<form class="stack" method="post" action="/ui/login" hx-boost="false">
<input type="hidden" name="next" value="{{next}}">
<div class="field">
<label for="api_key">API key</label>
<input type="password" id="api_key" name="api_key" autocomplete="current-password" required spellcheck="false" size="50">
</div>
<div><button type="submit" class="primary">Log in</button></div>
</form>
