// Harmony's own script, the only one besides htmx and its SSE extension (no inline script: the
// Content-Security-Policy forbids it). It hands the session's CSRF token, from
// <meta name="csrf-token">, to htmx as an X-CSRF-Token header on every request it makes; forms
// carry the same token in a hidden field, so everything also works with script off.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && meta.content) {
    document.body.setAttribute("hx-headers", JSON.stringify({ "X-CSRF-Token": meta.content }));
  }
})();
