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
    if (!root || !window.fetch) { return; }
    var url = root.getAttribute("data-transcription-url");
    var timer = window.setInterval(function () {
      if (document.hidden) { return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (!response.ok) { window.clearInterval(timer); return null; }
          return response.json();
        })
        .then(function (status) {
          if (!status) { return; }
          set("transcription-line", status.line);
          set("waiting-reason", status.reason);
          if (status.done) { window.clearInterval(timer); }
        })
        .catch(function () {});
    }, POLL_MS);
  });
}());
