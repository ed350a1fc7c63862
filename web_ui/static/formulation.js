/* The case-conceptualization page follows its drafting: while a version is queued or being
   drafted it polls the status and shows the progress; when the draft is done (or failed)
   it reloads, which loses nothing: the text is not editable while the model drafts. */
(function () {
  "use strict";
  var POLL_MS = 4000;

  document.addEventListener("DOMContentLoaded", function () {
    var line = document.querySelector("[data-status-url]");
    if (!line || !window.fetch || !window.holdnotePoll) { return; }
    var state = line.getAttribute("data-state");
    if (state !== "queued" && state !== "drafting") { return; }
    window.holdnotePoll(line.getAttribute("data-status-url"), POLL_MS, function (status) {
      if (status.state === "drafting") {
        line.textContent = "Drafting now: " + Math.round(status.progress * 100) + " % done.";
      }
      if (status.state !== "queued" && status.state !== "drafting") {
        window.location.reload();
        return true;
      }
      return false;
    });
  });
}());
