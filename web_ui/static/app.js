/* Holdnote page helpers. Progressive enhancement only: every page works
   without this file. Loaded from 'self' (the CSP forbids inline script). */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  /* Copy buttons: data-copy-text="<id of a textarea or element>". */
  function setUpCopy() {
    if (!navigator.clipboard) { return; }
    document.querySelectorAll("[data-copy-text]").forEach(function (button) {
      var target = document.getElementById(button.getAttribute("data-copy-text"));
      if (!target) { return; }
      var label = button.textContent;
      button.hidden = false;
      button.addEventListener("click", function () {
        var text = "value" in target ? target.value : target.textContent;
        navigator.clipboard.writeText(text.trim() + "\n").then(function () {
          button.textContent = "Copied";
          button.setAttribute("data-copied", "true");
          window.setTimeout(function () { button.textContent = label; }, 2000);
        }, function () {
          button.textContent = "Copy failed: select the text instead";
        });
      });
    });
  }

  /* Print buttons: data-print. */
  function setUpPrint() {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  }

  /* Idle logoff. The server ends a login after idle_seconds without
     requests; typing in a long note makes no requests, so while someone is
     active we tell the server (at most once a minute). When nobody has
     touched the page for the idle time (plus a margin so the server has
     certainly expired the login), reload it: the server then shows the
     login page instead of clinical text left on screen. */
  function setUpIdle() {
    var body = document.body;
    var idle = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
    var url = body.getAttribute("data-keepalive-url");
    if (!idle || !url) { return; }
    var lastActivity = Date.now();
    var lastPing = Date.now();
    var PING_MS = 60000;
    var MARGIN_MS = 90000;
    ["keydown", "input", "pointerdown", "wheel", "touchstart"].forEach(function (name) {
      window.addEventListener(name, function () { lastActivity = Date.now(); }, { passive: true });
    });
    window.setInterval(function () {
      var now = Date.now();
      if (now - lastActivity > idle * 1000 + MARGIN_MS) {
        window.location.assign(window.location.pathname + window.location.search);
        return;
      }
      if (lastActivity > lastPing && now - lastPing >= PING_MS) {
        lastPing = now;
        fetch(url, { method: "POST", credentials: "same-origin",
                     headers: { "X-CSRFToken": csrfToken() } }).catch(function () {});
      }
    }, 5000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpCopy();
    setUpPrint();
    setUpIdle();
  });
}());
