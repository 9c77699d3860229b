<nav class="pager" aria-label="Pages">
% if get('paged'):
<a href="{{url(path, params)}}">First page</a>
% end
% if get('next_cursor'):
<a href="{{url(path, params, cursor=next_cursor)}}" rel="next">Next page</a>
% end
</nav>
