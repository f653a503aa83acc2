// IA SOLARIS pages: modals (the alert one remembered per crossing), copy buttons, safe forms,
// buying a package in place (a PIX charge or a manual order) and watching the order until it is paid.
// No inline code anywhere: every behaviour hangs on data-* attributes (CSP script-src 'self').
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
    // The title takes the first focus, so a screen reader reads what the dialog is about.
    var title = dialog.querySelector("[autofocus]");
    if (title) { title.focus(); }
  }

  document.querySelectorAll("dialog[data-open]").forEach(open);
  document.querySelectorAll("dialog[data-open-unless-dismissed]").forEach(function (dialog) {
    var key = dialog.getAttribute("data-open-unless-dismissed");
    if (stored(key)) { return; }
    open(dialog);
    dialog.addEventListener("close", function () { remember(key); });
  });

  // Copy buttons live in panels that arrive later too: one listener for the whole page.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) {
      var field = document.querySelector(button.getAttribute("data-copy"));
      var done = function () { button.textContent = button.getAttribute("data-copied"); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
      } else {
        field.select();
        document.execCommand("copy");
        done();
      }
      return;
    }
    if (event.target.closest("[data-print]")) { window.print(); }
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
  // --- buying in place ---

  function csrf(form) {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }
  function html(text) {
    var holder = document.createElement("div");
    holder.innerHTML = text;
    return holder.firstElementChild;
  }
  function failure(area, message) {
    var box = document.createElement("p");
    box.className = "error";
    box.setAttribute("role", "alert");
    box.textContent = message;
    area.textContent = "";
    area.appendChild(box);
  }
  function panel(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (res) {
      if (!res.ok) { throw res.status; }
      return res.text();
    }).then(html);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-checkout]");
    var area = form && form.closest("[data-checkout-area]");
    var retry = form && form.closest("[data-order]");
    if (!form || (!area && !retry)) { return; }
    event.preventDefault();
    var button = form.querySelector("button");
    if (button.disabled) { return; }
    button.disabled = true;
    var list = area || retry.parentNode;
    var result = area ? area.querySelector("[data-checkout-result]") : retry;
    var purchases = (area || document.querySelector("[data-checkout-area]") || form).getAttribute("data-purchases-url") || "/api/v1/me/purchases";
    var pattern = (area || document.querySelector("[data-checkout-area]") || form).getAttribute("data-panel-pattern") || "/conta/pedidos/0/painel/";
    fetch(purchases, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf(form) },
      body: JSON.stringify({ package: +form.querySelector("input[name=package]").value })
    }).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) { throw (body.error && body.error.message) || String(res.status); }
        return panel(pattern.replace("/0/", "/" + body.id + "/"));
      });
    }).then(function (order) {
      if (area) {
        var packages = list.querySelector(".packages");
        if (packages) { packages.hidden = true; }
        result.textContent = "";
        result.appendChild(order);
      } else {
        retry.replaceWith(order);
      }
      watch(order);
      var first = order.querySelector("[data-copy], .paid, strong");
      if (first) { first.setAttribute("tabindex", first.matches("button") ? "0" : "-1"); first.focus(); }
    }, function (message) {
      button.disabled = false;
      failure(result === retry ? form.parentNode : result, typeof message === "string" ? message : String(message));
    });
  });

  // --- watching an order until it is paid ---

  function refreshSummary() {
    var region = document.getElementById("account-summary");
    if (!region) { return; }
    fetch(location.href, { credentials: "same-origin", cache: "no-store" }).then(function (res) {
      return res.ok ? res.text() : Promise.reject(res.status);
    }).then(function (text) {
      var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("account-summary");
      if (fresh) { region.replaceWith(document.importNode(fresh, true)); }
    }, function () { /* the next refresh will do */ });
  }

  function watch(order) {
    if (!order || order.getAttribute("data-status") !== "pending" || !order.getAttribute("data-poll")) { return; }
    var timer = setInterval(function () {
      if (!document.contains(order)) { clearInterval(timer); return; }
      if (document.hidden) { return; }
      fetch(order.getAttribute("data-poll"), { credentials: "same-origin", cache: "no-store" }).then(function (res) {
        return res.ok ? res.json() : Promise.reject(res.status);
      }).then(function (body) {
        if (body.status === "pending") { return; }
        clearInterval(timer);
        return panel(order.getAttribute("data-panel")).then(function (fresh) {
          var dialog = order.closest("dialog[data-paid-title]");
          order.replaceWith(fresh);
          if (body.status !== "paid") { return; }
          refreshSummary();
          if (dialog) {
            dialog.classList.remove("blocking");
            dialog.querySelector("h2").textContent = dialog.getAttribute("data-paid-title");
          }
        });
      }).catch(function () { /* a lost poll is retried by the next tick */ });
    }, 1000 * (+order.getAttribute("data-poll-seconds") || 30));
  }
  document.querySelectorAll("[data-order]").forEach(watch);
})();
