/* Herald console: two small enhancements; every page works without them.
   1. The overview swaps in fresh figures every few seconds.
   2. The template page re-renders its preview as you type. */
(function () {
  "use strict";

  function refreshOverview(live) {
    var url = live.getAttribute("data-refresh-url");
    var every = parseInt(live.getAttribute("data-refresh-ms"), 10) || 5000;
    var state = document.getElementById("refresh-state");
    var timer = null;
    if (state) state.textContent = "These figures refresh every " + Math.round(every / 1000) + " s.";
    function tick() {
      if (document.hidden) return;
      fetch(url, { credentials: "same-origin", redirect: "manual", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (response.type === "opaqueredirect" || response.status === 303) {
            window.clearInterval(timer);
            if (state) state.textContent = "Your session has ended: reload the page to sign in again.";
            throw new Error("signed out");
          }
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (html) {
          live.innerHTML = html;
          live.setAttribute("data-refreshed", String(Date.now()));
        })
        .catch(function (error) {
          if (state && error.message !== "signed out") {
            state.textContent = "The last refresh failed (" + error.message + "); trying again.";
          }
        });
    }
    timer = window.setInterval(tick, every);
  }

  function livePreview(form) {
    var url = form.getAttribute("data-preview-url");
    var frame = document.getElementById("preview-html");
    var subject = document.getElementById("preview-subject");
    var text = document.getElementById("preview-text");
    var error = document.getElementById("preview-error");
    var state = document.getElementById("preview-state");
    var pending = null;
    var sequence = 0;
    function render() {
      var mine = ++sequence;
      var body = new URLSearchParams(new FormData(form));
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": body.get("csrf_token") || "" },
        body: body
      })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (result) {
          if (mine !== sequence) return; // a later keystroke's answer wins
          error.hidden = !result.error;
          error.textContent = result.error || "";
          if (!result.error) {
            subject.textContent = result.subject;
            frame.setAttribute("srcdoc", result.html);
            text.textContent = result.text;
          }
          form.setAttribute("data-previewed", String(mine));
          if (state) state.textContent = "Preview updated as you type.";
        })
        .catch(function (failure) {
          if (state) state.textContent = "Preview unavailable (" + failure.message + "); use the Preview button.";
        });
    }
    form.addEventListener("input", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(render, 300);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("overview-live");
    if (live) refreshOverview(live);
    var form = document.getElementById("template-form");
    if (form && window.fetch && window.URLSearchParams) livePreview(form);
  });
})();
