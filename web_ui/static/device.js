/* Live recorder and disk status on the device page: polls a JSON endpoint
   that does not count as activity, so a device page left open still logs off. */
(function () {
  "use strict";
  var POLL_MS = 4000;

  function set(name, text) {
    var element = document.querySelector('[data-live="' + name + '"]');
    if (element && element.textContent !== String(text)) { element.textContent = text; }
  }

  function label(state) {
    var text = String(state || "unavailable").replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function show(status) {
    var recorder = status.recorder || {};
    set("recorder-state", recorder.label || label(recorder.state));
    set("recorder-elapsed", recorder.elapsed || "");
    set("recorder-error", recorder.error || "");
    var dot = document.querySelector('[data-live="recorder-dot"]');
    if (dot) { dot.className = "dot rec-" + (recorder.state || "unavailable"); }
    set("free-hours", status.free_hours);
    set("free-gb", (status.free_bytes / 1e9).toFixed(1));
    set("waiting", status.waiting);
    set("lock", status.locked ? "Locked: log in to unlock" : "Unlocked");
    buttons(status.buttons || {}, recorder.state);
  }

  /* The server decides which buttons work in each state; the page only follows. */
  function buttons(states, recorderState) {
    Object.keys(states).forEach(function (cmd) {
      var button = document.querySelector('[data-live-button="' + cmd + '"]');
      if (!button) { return; }
      button.disabled = !states[cmd].enabled;
      button.classList.toggle("btn-primary", !!states[cmd].primary);
      button.classList.toggle("btn-quiet", cmd === "mark" && !states[cmd].primary);
    });
    var down = !(states.start && states.start.enabled) &&
      recorderState !== "recording" && recorderState !== "stopping";
    set("start-help", down ? "Start recording is unavailable until the recorder is running." : "");
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("device-live");
    if (!root || !window.fetch || !window.holdnotePoll) { return; }
    var url = root.getAttribute("data-status-url");
    window.holdnotePoll(url, POLL_MS, function (status) { show(status); return false; });
  });
}());
