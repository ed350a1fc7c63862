/* A waiting session's page follows its transcription ("Transcribe now", or the overnight
   job) without a reload: polls a JSON status that does not count as activity, so a page
   left open still logs off. When the job is done the page says to reload; it does not
   reload itself, which would lose what was being typed. */
(function () {
  "use strict";
  var POLL_MS = 4000;

  function set(name, text) {
    var element = document.querySelector('[data-live="' + name + '"]');
    if (!element) { return; }
    if (element.textContent !== text) { element.textContent = text; }
    element.hidden = !text;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.querySelector("[data-transcription-url]");
    if (!root || !window.fetch || !window.holdnotePoll) { return; }
    var url = root.getAttribute("data-transcription-url");
    window.holdnotePoll(url, POLL_MS, function (status) {
      set("transcription-line", status.line);
      set("waiting-reason", status.reason);
      return status.done;
    });
  });
}());
