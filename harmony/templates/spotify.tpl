% rebase('layout', title=title)
<h1>Spotify</h1>
% auth = state['authorization']
% if not state['configured']:
<p class="error-text">Spotify is not configured: set <code>spotify.client_id</code> (and the secret) in the
configuration file, from the app you created at developer.spotify.com.</p>
% else:
<dl class="facts">
<dt>Account</dt>
% if auth:
<dd>{{auth['display_name'] or auth['user_id']}} <span class="muted">({{auth['user_id']}})</span>
% if auth['revoked_reason']:
<span class="badge bad">refused</span> <span class="error-text">Spotify refused the authorisation ({{auth['revoked_reason']}}): connect again.</span>
% end
</dd>
<dt>Authorised</dt><dd>{{when(auth['authorized_at'])}} UTC</dd>
<dt>Authorisation expires</dt><dd>{{when(auth['refresh_expires_at'])}} UTC ({{ago(auth['refresh_expires_at'], now)}}): connect again before then.</dd>
<dt>Scopes</dt><dd><code>{{auth['scope']}}</code></dd>
% else:
<dd>not connected</dd>
% end
% if check:
<dt>Check</dt><dd class="{{'' if check['ok'] else 'error-text'}}">{{check['detail']}}</dd>
% end
% if state['cooldown']:
<dt>Cooling down</dt><dd>until {{when(state['cooldown']['until'])}} UTC: {{state['cooldown']['reason']}}</dd>
% end
</dl>
<h2>Connect</h2>
<p>Register this redirect URI with your Spotify app (in its settings on developer.spotify.com), exactly as shown:</p>
<p class="key-once" id="redirect-uri">{{redirect_uri}}</p>
% if authorize:
<p><a id="authorize" href="{{authorize}}" hx-boost="false" class="primary">Continue to Spotify to authorise Harmony</a></p>
<p class="muted small">The link works for 15 minutes; Spotify sends you back here.</p>
% elif can('admin'):
<form class="inline" method="post" action="/ui/spotify/connect">
% include('_back')
<button type="submit" class="primary">{{'Connect again' if auth else 'Connect to Spotify'}}</button>
</form>
% if auth:
<details class="confirm"><summary>Disconnect…</summary>
<form class="inline" method="post" action="/ui/spotify/disconnect">
% include('_back')
<button type="submit" class="danger">Disconnect from Spotify</button>
</form>
</details>
% end
% end
% end
