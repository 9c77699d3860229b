<nav class="tabs" aria-label="Library views">
<ul>
% for name, path, label in views:
<li><a href="{{url(path, {'q': q})}}"{{!' aria-current="page"' if view == name else ''}}>{{label}}</a></li>
% end
</ul>
</nav>
<form class="filters" method="get" action="{{dict((n, p) for n, p, _ in views)[view]}}" role="search" aria-label="Search the library">
<div class="field"><label for="lib-q">{{ {'artists': 'Album artist', 'albums': 'Album or album artist', 'tracks': 'Title, artist or album'}[view] }}</label>
<input type="search" id="lib-q" name="q" value="{{q or ''}}"></div>
% if artist is not None:
<input type="hidden" name="artist" value="{{artist}}">
% end
% if album is not None:
<input type="hidden" name="album" value="{{album}}">
% end
<div><button type="submit">Search</button>
% if q or artist is not None or album is not None:
<a href="{{dict((n, p) for n, p, _ in views)[view]}}">Clear</a>
% end
</div>
</form>
% if artist is not None or album is not None:
<p>Only {{('the album “%s” of ' % album) if album is not None else 'the albums of '}}<strong>{{artist if artist is not None else 'any artist'}}</strong>.</p>
% end
