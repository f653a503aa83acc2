// IA SOLARIS pages: modals (the alert one remembered per crossing), copy buttons, safe forms.
(function () {
  "use strict";
  var DISMISSED = "solaris-alert-dismissed:";

  function stored(key) {
    try { return window.localStorage.getItem(DISMISSED + key); } catch (e) { return null; }
  }
  function remember(key) {
    try { window.localStorage.setItem(DISMISSED + key, "1"); } catch (e) { /* private mode */ }
  }
  function open(dialog) {
    if (typeof dialog.showModal === "function") { dialog.showModal(); } else { dialog.setAttribute("open", ""); }
  }

  document.querySelectorAll("dialog[data-open]").forEach(open);
  document.querySelectorAll("dialog[data-open-unless-dismissed]").forEach(function (dialog) {
    var key = dialog.getAttribute("data-open-unless-dismissed");
    if (stored(key)) { return; }
    open(dialog);
    dialog.addEventListener("close", function () { remember(key); });
  });

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.querySelector(button.getAttribute("data-copy"));
      var done = function () { button.textContent = button.getAttribute("data-copied"); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done);
      } else {
        field.select();
        document.execCommand("copy");
        done();
      }
    });
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
  // A second click while the first submit is in flight sends nothing (the server is idempotent too).
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sent")) { event.preventDefault(); return; }
      form.setAttribute("data-sent", "1");
    });
  });
})();
