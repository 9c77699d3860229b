<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
% if get('refresh'):
<meta http-equiv="refresh" content="{{refresh}}">
% end
<meta name="csrf-token" content="{{csrf}}">
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0,"refreshOnHistoryMiss":true,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"4..","swap":true},{"code":"5..","swap":true,"error":true}]}'>
<title>{{title}} · Harmony</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/harmony.css">
<script src="/static/htmx.min.js" defer></script>
<script src="/static/htmx-ext-sse.min.js" defer></script>
<script src="/static/harmony.js" defer></script>
</head>
<body hx-boost="true">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/ui/">Harmony</a> <span class="version">{{version}}</span>
% if user:
<nav aria-label="Main">
<ul>
% for family, path, label, need in nav:
<li><a href="{{path}}"{{!' aria-current="page"' if get('section') == family else ''}}>{{label}}</a></li>
% end
</ul>
</nav>
<form class="logout" method="post" action="/ui/logout" hx-boost="false">
<input type="hidden" name="csrf_token" value="{{csrf}}">
<span class="who">{{user['name']}} <span class="role">({{user['role']}})</span></span>
% if session:
<button type="submit" class="link">Log out</button>
% elif user['id'] is None:
<a href="/ui/login">Sign in</a>
% end
</form>
% end
</header>
<main id="main" tabindex="-1">
% include('_flash')
{{!base}}
</main>
<footer class="bottom"><p>Harmony {{version}} · <a href="/ui/system">system</a></p></footer>
</body>
</html>
