<div id="flash" role="status" aria-live="polite">
% if flash:
<p class="flash {{flash[0]}}">{{flash[1]}}</p>
% end
</div>
