% rebase('layout', title=title)
<h1>Library: albums</h1>
% include('_library_nav')
% if not rows:
<p class="muted">{{'No album matches.' if q or artist is not None else 'The library is empty.'}}</p>
% else:
<ul class="albums">
% for row in rows:
<li class="album">
<a href="{{link('/ui/library/tracks', artist=row['album_artist'], album=row['album'])}}">
<img src="{{cover_url(row['album_artist'], row['album'])}}" alt="" width="160" height="160" loading="lazy">
<span class="album-name">{{row['album'] or '(no album)'}}</span></a>
<span class="muted small">{{row['album_artist'] or '(no album artist)'}}{{(' · %s' % row['year']) if row['year'] else ''}}<br>{{row['tracks']}} track(s) · {{', '.join(row['formats'])}} · {{nbytes(row['size'])}}</span>
</li>
% end
</ul>
% end
% include('_pager', path='/ui/library/albums')
