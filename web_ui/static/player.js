/* Listening to a session: the transcript drives the page's <audio> element.
   Loaded from 'self' by the session page (the CSP forbids inline script).

   Without this file the native controls still play, pause and seek. With it:
   a click on a transcript line plays from that line; the line being heard is
   marked (class "playing", aria-current); the speed select sets the rate
   (remembered in localStorage); Space/K, J and L work as in video players;
   stretches the server marked unreadable (data-gaps, [[start, end], ...]
   seconds) are skipped and said; a failed load is explained in words. */
(function () {
  "use strict";
  var STEP_S = 5;
  var SPEED_KEY = "holdnote.player.speed";
  var PLAYING = "playing";

  function clock(seconds) {
    var s = Math.floor(seconds);
    var m = Math.floor(s / 60);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return m >= 60 ? Math.floor(m / 60) + ":" + pad(m % 60) + ":" + pad(s % 60)
      : m + ":" + pad(s % 60);
  }

  /* The transcript's lines in time order, so the line at a moment is a binary search. */
  function readLines() {
    return Array.prototype.map.call(
      document.querySelectorAll("li.seg[data-start]"),
      function (el) { return { el: el, start: parseFloat(el.getAttribute("data-start")) }; }
    ).filter(function (line) { return !isNaN(line.start); })
      .sort(function (a, b) { return a.start - b.start; });
  }

  function lineAt(lines, t) {
    var lo = 0, hi = lines.length - 1, found = null;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (lines[mid].start <= t + 0.05) { found = lines[mid]; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }

  function readGaps(bar) {
    try {
      return JSON.parse(bar.getAttribute("data-gaps") || "[]");
    } catch (error) {
      return [];
    }
  }

  function typing(target) {
    if (!target || !target.closest) { return false; }
    return target.isContentEditable ||
      target.closest("input, textarea, select, [contenteditable]:not([contenteditable=false])") !== null;
  }

  /* True when the element is hidden behind the sticky bar or outside the window. */
  function offScreen(el, bar) {
    var box = el.getBoundingClientRect();
    var top = Math.max(0, bar.getBoundingClientRect().bottom);
    return box.bottom <= top || box.top >= window.innerHeight;
  }

  /* Why the recording did not load, in words: the media element only says "error".
     Asks for one byte past the start, which the server does not count as a playback. */
  function explain(url, status) {
    var request = { credentials: "same-origin", redirect: "manual",
                    headers: { Accept: "application/json", Range: "bytes=1-1" } };
    return fetch(url, request).then(function (response) {
      if (response.status === 423) { return "The device was locked: log in again to listen."; }
      if (response.status === 401 || response.type === "opaqueredirect") {
        return "You were logged off or the device was locked: log in again to listen.";
      }
      if (response.ok) { return "The recording could not be played in this browser."; }
      return response.json().then(function (body) {
        return body.error || "The recording could not be loaded (" + response.status + ").";
      }, function () { return "The recording could not be loaded (" + response.status + ")."; });
    }, function () {
      return "The device cannot be reached: check the network, then reload the page.";
    }).then(function (text) { status(text, true); });
  }

  function setUp(bar) {
    var audio = bar.querySelector("audio");
    if (!audio) { return; }
    var lines = readLines();
    var gaps = readGaps(bar);
    var speed = bar.querySelector("[data-player-speed]");
    var statusEl = bar.querySelector("[data-player-status]");
    var current = null;

    bar.querySelectorAll("[data-player-tools]").forEach(function (el) { el.hidden = false; });
    document.body.classList.add("can-listen");

    function status(text, isError) {
      statusEl.textContent = text;
      statusEl.hidden = !text;
      statusEl.classList.toggle("text-error", !!isError);
    }

    function mark(line, follow) {
      if (line === current) { return; }
      var wasVisible = current === null || !offScreen(current.el, bar);
      if (current) {
        current.el.classList.remove(PLAYING);
        current.el.removeAttribute("aria-current");
      }
      current = line;
      if (!line) { return; }
      line.el.classList.add(PLAYING);
      line.el.setAttribute("aria-current", "true");
      // Follow the playback only while the reader follows it too: someone who
      // scrolled away to read elsewhere is not pulled back.
      if ((follow || wasVisible) && offScreen(line.el, bar)) {
        var still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
        line.el.scrollIntoView({ block: "center", behavior: still ? "auto" : "smooth" });
      }
    }

    function skipGap() {
      var t = audio.currentTime;
      for (var i = 0; i < gaps.length; i += 1) {
        if (t >= gaps[i][0] && t < gaps[i][1]) {
          audio.currentTime = gaps[i][1];
          status("Skipped " + Math.max(1, Math.round(gaps[i][1] - gaps[i][0])) +
                 " s unreadable at " + clock(gaps[i][0]), false);
          return;
        }
      }
    }

    function playFrom(seconds) {
      status("", false);
      audio.currentTime = seconds;
      mark(lineAt(lines, seconds), true);
      var started = audio.play();
      if (started && started.catch) { started.catch(function () {}); }  // reported by "error"
    }

    audio.addEventListener("timeupdate", function () {
      skipGap();
      mark(lineAt(lines, audio.currentTime), false);
      // Someone listening is not idle: app.js keeps the login alive while it plays.
      if (!audio.paused) { window.dispatchEvent(new Event("holdnote:activity")); }
    });
    audio.addEventListener("error", function () { explain(audio.currentSrc || audio.src, status); });

    if (speed) {
      var saved = null;
      try { saved = window.localStorage.getItem(SPEED_KEY); } catch (error) { saved = null; }
      if (saved && speed.querySelector('option[value="' + saved + '"]')) { speed.value = saved; }
      audio.playbackRate = parseFloat(speed.value) || 1;
      // A new source resets the rate to the default: put it back.
      audio.addEventListener("loadedmetadata", function () {
        audio.playbackRate = parseFloat(speed.value) || 1;
      });
      speed.addEventListener("change", function () {
        audio.playbackRate = parseFloat(speed.value) || 1;
        try { window.localStorage.setItem(SPEED_KEY, speed.value); } catch (error) { /* private mode */ }
      });
    }

    document.addEventListener("click", function (event) {
      var line = event.target.closest ? event.target.closest("li.seg[data-start]") : null;
      if (!line) { return; }
      // Links, buttons and forms inside a line ("Correct", a citation) do their own
      // thing; the timestamp link plays. Its address still names the moment, but the
      // jump would put the line under the player bar, so the line stays where it is.
      var control = event.target.closest("a, button, input, select, textarea, form, label");
      if (control && !control.matches("a.ts")) { return; }
      // Selecting words to copy is not a request to play.
      if (!control && String(window.getSelection ? window.getSelection() : "")) { return; }
      if (control) {
        event.preventDefault();
        window.history.replaceState(null, "", control.getAttribute("href"));
      }
      playFrom(parseFloat(line.getAttribute("data-start")));
    });

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
      // On a focused button or link Space means "press it".
      if (event.key === " " && event.target.closest &&
          event.target.closest("button, a, summary, audio")) { return; }
      var key = event.key.toLowerCase();
      if (key === " " || key === "k") {
        if (audio.paused) { audio.play().catch(function () {}); } else { audio.pause(); }
      } else if (key === "j") {
        audio.currentTime = Math.max(0, audio.currentTime - STEP_S);
      } else if (key === "l") {
        audio.currentTime = Math.min(audio.duration || Infinity, audio.currentTime + STEP_S);
      } else {
        return;
      }
      event.preventDefault();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-player]").forEach(setUp);
  });
}());
