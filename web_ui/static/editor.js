/* The note editor saves the draft as the clinician types. Loaded from 'self'
   by the session page only (the CSP forbids inline script).

   A save goes out DEBOUNCE_MS after the last keystroke, as a background POST
   of the same fields as "Save draft" (the server encrypts it like any save).
   The page's version travels with every save and comes back changed, so a
   save from another window is never overwritten and "Save draft" / "Sign"
   still name the version they were typed over. app.js asks the editor to
   save before an idle logoff (window.Holdnote.editor). */
(function () {
  "use strict";
  var DEBOUNCE_MS = 2000;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  /* Why a save failed, in words the clinician can act on. */
  function reason(status, message) {
    if (status === 401) { return "you were logged out. Copy your text, then log in again."; }
    if (status === 423) { return "the device was locked. Copy your text, then log in again."; }
    if (message) { return message; }
    if (status === 400) { return "this page has expired. Copy your text and reload the page."; }
    return "the device did not answer (" + status + "). It tries again as you type.";
  }

  function setUp(form) {
    var url = form.getAttribute("data-autosave-url");
    var status = form.querySelector("[data-autosave-status]");
    var version = form.querySelector('input[name="version"]');
    var fields = form.querySelectorAll('textarea[name^="section-"]');
    var timer = null;
    var saving = null;
    var dirty = false;
    var stopped = false;  // refused for good (signed, changed elsewhere): "Save draft" says why
    var submitting = false;

    function show(text, state) {
      status.hidden = false;
      status.textContent = text;
      status.setAttribute("data-state", state);
    }

    function body() {
      var data = new URLSearchParams();
      data.append("version", version.value);
      fields.forEach(function (field) { data.append(field.name, field.value); });
      return data;
    }

    function settle(response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.ok) {
          version.value = data.version;
          show("Saved " + data.saved_at, "saved");
          return;
        }
        dirty = true;
        stopped = response.status === 409;
        show("Not saved: " + reason(response.status, data.error), "error");
      });
    }

    /* Save now if anything is unsaved; a promise that settles when it is done. */
    function save(keepalive) {
      window.clearTimeout(timer);
      timer = null;
      if (saving) { return saving.then(function () { return save(keepalive); }); }
      if (!dirty || stopped) { return Promise.resolve(); }
      dirty = false;
      show("Saving…", "saving");
      saving = fetch(url, {
        method: "POST", credentials: "same-origin", body: body(), keepalive: !!keepalive,
        headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" }
      }).then(settle, function () {
        dirty = true;
        show("Not saved: " + reason(0, "the device cannot be reached. It tries again as you type."),
             "error");
      }).then(function () { saving = null; });
      return saving;
    }

    fields.forEach(function (field) {
      field.addEventListener("input", function () {
        dirty = true;
        if (stopped) { return; }
        window.clearTimeout(timer);
        timer = window.setTimeout(save, DEBOUNCE_MS);
      });
    });

    /* "Save draft" and "Sign" post the version the last background save
       returned: wait for a save under way before the form goes. */
    form.addEventListener("submit", function (event) {
      window.clearTimeout(timer);
      timer = null;
      if (saving && !submitting) {
        event.preventDefault();
        var submitter = event.submitter;
        saving.then(function () {
          submitting = true;
          if (form.requestSubmit) { form.requestSubmit(submitter); } else { form.submit(); }
        });
        return;
      }
      submitting = true;
    });

    /* Leaving the page with a save still waiting: send it anyway. */
    window.addEventListener("pagehide", function () {
      if (dirty && !submitting) { save(true); }
    });

    window.Holdnote = window.Holdnote || {};
    window.Holdnote.editor = {
      unsaved: function () { return !submitting && (dirty || timer !== null || saving !== null); },
      save: function () { return save(false); }
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form[data-autosave-url]");
    if (form && window.fetch && window.URLSearchParams) { setUp(form); }
  });
}());
