% rebase('layout', title='Spotify connected')
<h1>Spotify connected</h1>
<p>Connected to Spotify as {{name}}.</p>
<p><a href="/ui/spotify">Back to Harmony</a></p>
