<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{status}} · Harmony</title>
</head>
<body>
<main>
<h1>{{status}}</h1>
<p>{{message}}</p>
<p><small>code: {{code}}</small></p>
<p><a href="/ui/">Back to Harmony</a></p>
</main>
</body>
</html>
