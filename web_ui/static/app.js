/* Holdnote page helpers. Progressive enhancement only: every page works
   without this file. Loaded from 'self' (the CSP forbids inline script). */
(function () {
  "use strict";

  /* Live status for the device page and a waiting session (device.js, transcribe.js):
     GET `url` as JSON every `everyMs` while the page is visible and hand it to
     `onStatus`; stops when the answer is not OK (logged off) or `onStatus` returns
     true (done). Those endpoints do not count as activity, so an open page still
     logs off. */
  window.holdnotePoll = function (url, everyMs, onStatus) {
    var timer = window.setInterval(function () {
      if (document.hidden) { return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (!response.ok) { window.clearInterval(timer); return null; }
          return response.json();
        })
        .then(function (status) {
          if (status && onStatus(status)) { window.clearInterval(timer); }
        })
        .catch(function () {});
    }, everyMs);
  };

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

  /* Idle logoff. The server ends a login idle_seconds after its last
     request (it records activity at most every 20 s). Typing in a long
     note makes no requests, so while someone is active we tell the server
     (at most once a minute). The page keeps its own copy of that deadline
     from the requests it sent (lastTouch). A minute before it, a warning
     says what will happen; SAVE_LEAD_MS before it the note editor saves
     what is unsaved (editor.js; that save does not count as activity, so
     the login still ends); just after it the page reloads, and the server
     shows the login page instead of clinical text left on screen. Any
     activity meanwhile is reported at once and cancels the warning. */
  function setUpIdle() {
    var body = document.body;
    var idle = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
    var url = body.getAttribute("data-keepalive-url");
    if (!idle || !url) { return; }
    var idleMs = idle * 1000;
    var GRACE_MS = 5000;
    var WARN_MS = Math.min(60000, idleMs / 2);
    // The server may have recorded the last request up to 20 s early: save well before.
    var SAVE_LEAD_MS = GRACE_MS + 40000;
    var PING_MS = Math.min(60000, idleMs / 3);
    var lastTouch = Date.now();
    var lastActivity = lastTouch;
    var saveAsked = false;
    var leaving = false;
    var warning = null;

    function editor() { return window.Holdnote && window.Holdnote.editor; }

    function warn(seconds) {
      if (!warning) {
        warning = document.createElement("div");
        warning.className = "flash flash-warning";
        warning.setAttribute("role", "alert");
        warning.setAttribute("data-testid", "idle-warning");
        // Set through the DOM (the CSP allows no inline styles): seen wherever the page is scrolled.
        warning.style.position = "fixed";
        warning.style.top = "0.75rem";
        warning.style.left = "50%";
        warning.style.transform = "translateX(-50%)";
        warning.style.zIndex = "100";
        warning.style.maxWidth = "34rem";
        body.appendChild(warning);
      }
      warning.textContent = "No activity for a while: " +
        (editor() ? "unsaved text will be saved and " : "") +
        "you will be logged off in " + seconds + " s. Click, scroll or press a key to stay.";
    }

    function ping(now) {
      lastTouch = now;
      saveAsked = false;
      if (warning) { warning.remove(); warning = null; }
      fetch(url, { method: "POST", credentials: "same-origin",
                   headers: { "X-CSRFToken": csrfToken() } }).catch(function () {});
    }

    function logOff() {
      leaving = true;
      var reload = function () {
        window.location.assign(window.location.pathname + window.location.search);
      };
      var pending = editor() && editor().unsaved() ? editor().save() : Promise.resolve();
      pending.then(reload, reload);
    }

    // "holdnote:activity": listening to the recording (player.js) is reviewing too.
    ["keydown", "input", "pointerdown", "wheel", "touchstart", "holdnote:activity"].forEach(function (name) {
      window.addEventListener(name, function () { lastActivity = Date.now(); }, { passive: true });
    });
    window.setInterval(function () {
      if (leaving) { return; }
      var now = Date.now();
      var logoffAt = lastTouch + idleMs + GRACE_MS;
      // First: a page woken from sleep past the deadline is logged off, whatever was pressed.
      if (now >= logoffAt) { logOff(); return; }
      if (lastActivity > lastTouch && (now - lastTouch >= PING_MS || now >= logoffAt - WARN_MS)) {
        ping(now);
        return;
      }
      if (now >= logoffAt - SAVE_LEAD_MS && !saveAsked && editor()) {
        saveAsked = true;
        editor().save();
      }
      if (now >= logoffAt - WARN_MS) { warn(Math.ceil((logoffAt - now) / 1000)); }
    }, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpCopy();
    setUpPrint();
    setUpIdle();
  });
}());
