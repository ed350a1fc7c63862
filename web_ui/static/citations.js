/* A drafted statement's citations point at the transcript lines it rests on.
   Loaded from 'self' by the session page (the CSP forbids inline script).

   A citation carries the line's exact start (data-start, written by the server
   the same way on both sides); clicking it scrolls that line into view and
   highlights it, since the "#t-<second>" anchor alone lands on the first line
   of that second. Without script the link still goes to that anchor. */
(function () {
  "use strict";
  var HIGHLIGHT = "cited";

  function lineFor(start) {
    var lines = document.querySelectorAll("li.seg[data-start]");
    for (var i = 0; i < lines.length; i += 1) {
      if (lines[i].getAttribute("data-start") === start) { return lines[i]; }
    }
    return null;
  }

  function show(line) {
    document.querySelectorAll("li.seg." + HIGHLIGHT).forEach(function (other) {
      other.classList.remove(HIGHLIGHT);
    });
    line.classList.add(HIGHLIGHT);
    line.scrollIntoView({ block: "center", behavior: "smooth" });
    // Focus follows, so a keyboard or screen-reader user lands on the line too.
    line.setAttribute("tabindex", "-1");
    line.focus({ preventScroll: true });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.cite[data-start]") : null;
    if (!link) { return; }
    var line = lineFor(link.getAttribute("data-start"));
    if (!line) { return; }  // not on this page: the anchor does what it can
    event.preventDefault();
    show(line);
  });
}());
