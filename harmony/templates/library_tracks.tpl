% rebase('layout', title=title)
<h1>Library: tracks</h1>
% include('_library_nav')
% if not rows:
<p class="muted">{{'No track matches.' if q or artist is not None or album is not None else 'The library is empty.'}}</p>
% else:
<div class="scroll">
<table class="responsive">
<thead><tr><th scope="col" class="num">#</th><th scope="col">title</th><th scope="col">album</th><th scope="col">format</th><th scope="col" class="num">length</th><th scope="col" class="num">size</th><th scope="col">Spotify</th></tr></thead>
<tbody>
% for t in rows:
<tr>
<td data-label="#" class="num">{{('%s-' % t.disc_number) if t.disc_number and t.disc_number > 1 else ''}}{{t.track_number or ''}}</td>
<td data-label="title"><strong>{{t.title or '(no title)'}}</strong><br><span class="muted small">{{', '.join(t.artists)}}</span><br><span class="muted small mono">{{t.path}}</span></td>
<td data-label="album"><a href="{{link('/ui/library/albums', artist=t.album_artist)}}">{{t.album_artist or '(no album artist)'}}</a> — <a href="{{link('/ui/library/tracks', artist=t.album_artist, album=t.album)}}">{{t.album or '(no album)'}}</a>{{(' (%s)' % t.year) if t.year else ''}}</td>
<td data-label="format">{{t.format}}{{(' %d kbps' % t.bitrate) if t.bitrate else ''}}{{(' %d-bit' % t.bit_depth) if t.bit_depth else ''}}{{(' %.1f kHz' % (t.sample_rate / 1000)) if t.sample_rate else ''}}</td>
<td data-label="length" class="num">{{'%d:%02d' % divmod(t.duration_ms // 1000, 60)}}</td>
<td data-label="size" class="num">{{nbytes(t.size)}}</td>
<td data-label="Spotify">
% if t.spotify_id:
<code>{{t.spotify_id}}</code>{{(' (%s %.2f)' % (t.match_method, t.match_confidence)) if t.match_method and t.match_confidence is not None else ''}}
% else:
<span class="muted">not matched</span>
% end
% if t.item_id:
<br><a href="/ui/wanted/{{t.item_id}}" class="small">wanted item</a>
% end
</td>
</tr>
% end
</tbody>
</table>
</div>
% end
% include('_pager', path='/ui/library/tracks')
