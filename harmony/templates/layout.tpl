<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
% if get('refresh'):
<meta http-equiv="refresh" content="{{refresh}}">
% end
<title>{{title}} · Harmony</title>
<link rel="stylesheet" href="/static/harmony.css">
</head>
<body>
<header><a class="brand" href="/ui/">Harmony</a> <span class="version">{{version}}</span></header>
<main>
{{!base}}
</main>
</body>
</html>
