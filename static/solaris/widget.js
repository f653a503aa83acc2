/* IA SOLARIS credit widget: <script src="https://SOLARIS/static/solaris/widget.js" defer></script>
 * A counter, the 80 % alert and the blocking modal (with PIX checkout), a link to the statement.
 * No dependencies. Options (data-* on the script tag): solaris-url, interval (seconds),
 * lang (pt-BR | en), position (bottom-right | bottom-left | top-right | top-left), offset (px).
 * docs/widget.md */
(function () {
  "use strict";
  if (window.__solarisWidget) { return; }
  window.__solarisWidget = true;
  var me = document.currentScript;
  var opt = function (name) { return me && me.getAttribute("data-" + name); };
  // Solaris lives where the script came from (path prefix included) unless data-solaris-url says so.
  var base = (opt("solaris-url") || (me ? new URL(me.src, location.href).href : location.origin)
    .replace(/\/static\/solaris\/widget\.js([?#].*)?$/, "")).replace(/\/$/, "");
  var every = Math.max(15, +(opt("interval") || 60)) * 1000;
  var lang = (opt("lang") || document.documentElement.lang || navigator.language || "pt").toLowerCase();
  var EN = lang.indexOf("en") === 0;
  var POSITIONS = ["bottom-right", "bottom-left", "top-right", "top-left"];
  var position = POSITIONS.indexOf(opt("position")) >= 0 ? opt("position") : "bottom-right";
  var TOP = position.indexOf("top") === 0;
  // By default the counter sits above LibreChat's composer and send button (the bottom 140 px).
  var offset = isFinite(parseInt(opt("offset"), 10)) ? parseInt(opt("offset"), 10) : (TOP ? 16 : 156);
  var T = EN ? {
    credits: "credits", available: "credits available", used: "used", statement: "See statement", buy: "Buy credits",
    alertTitle: "Your credits are running low", paidTitle: "Your credits are in", alertText: "You have used {p} % of your credits; {a} are left.",
    blockedTitle: "Your credits are exhausted", blockedText: "New calls are refused until more credits arrive.",
    buyBelow: "Buy a package below", payBelow: "Pay your order below", wait: "or wait for the renewal {w} (+{c} credits)",
    renews: "Renews {w}: {x}", expire: "{n} expire", expires: "{n} expires", today: "today", tomorrow: "tomorrow", inDays: "in {n} days",
    base: "{p} % of the {t} credits received this cycle", mail: "Questions:", ok: "Got it", close: "Close",
    closePanel: "Close the IA SOLARIS panel", plan: "Plan", payPix: "Pay with PIX", request: "Request purchase",
    payPixFor: "Pay with PIX: {n}, {v}", requestFor: "Request purchase: {n}, {v}", order: "Order #{i} · {v} · {s}",
    pending: "awaiting payment", paid: "Paid — +{c} credits", payBefore: "Pay {v} by PIX before {w}.",
    qr: "PIX QR code to pay {v}", code: "PIX copy-and-paste code", copy: "Copy code", copied: "Code copied",
    bank: "In your bank's app choose PIX, then pay with the QR code or paste the code. This updates by itself.",
    howTo: "How to pay:", other: "Choose another package", failed: "Could not start the purchase:",
    gone: "This order is closed ({s}). Choose a package again.", wait2: "Working…",
    st: { expired: "expired", cancelled: "cancelled", refunded: "refunded", review: "under review", paid: "paid" }
  } : {
    credits: "créditos", available: "créditos disponíveis", used: "usado", statement: "Ver extrato", buy: "Comprar créditos",
    alertTitle: "Seus créditos estão acabando", paidTitle: "Seus créditos chegaram", alertText: "Você já usou {p} % dos seus créditos; restam {a}.",
    blockedTitle: "Seus créditos acabaram", blockedText: "Novas chamadas serão recusadas até chegarem mais créditos.",
    buyBelow: "Compre um pacote abaixo", payBelow: "Pague o seu pedido abaixo", wait: "ou aguarde a renovação {w} (+{c} créditos)",
    renews: "Renova {w}: {x}", expire: "{n} vencem", expires: "{n} vence", today: "hoje", tomorrow: "amanhã", inDays: "em {n} dias",
    base: "{p} % dos {t} créditos recebidos neste ciclo", mail: "Dúvidas:", ok: "Entendi", close: "Fechar",
    closePanel: "Fechar o painel da IA SOLARIS", plan: "Plano", payPix: "Pagar com PIX", request: "Solicitar compra",
    payPixFor: "Pagar com PIX: {n}, {v}", requestFor: "Solicitar compra: {n}, {v}", order: "Pedido #{i} · {v} · {s}",
    pending: "aguardando pagamento", paid: "Pago — +{c} créditos", payBefore: "Pague {v} por PIX até {w}.",
    qr: "QR code PIX para pagar {v}", code: "Código PIX copia e cola", copy: "Copiar código", copied: "Código copiado",
    bank: "No app do seu banco, escolha PIX e pague com o QR code ou cole o código. Isto se atualiza sozinho.",
    howTo: "Como pagar:", other: "Escolher outro pacote", failed: "Não foi possível iniciar a compra:",
    gone: "Este pedido foi encerrado ({s}). Escolha um pacote de novo.", wait2: "Aguarde…",
    st: { expired: "expirado", cancelled: "cancelado", refunded: "estornado", review: "em análise", paid: "pago" }
  };
  var WATCH = /\/chat\/completions|\/api\/ask|\/api\/agents/;
  var DISMISSED = "solaris-alert-dismissed:";
  // A PIX charge is paid in seconds; a manual order waits for finance.
  var POLL_PIX_MS = 3000, POLL_MANUAL_MS = 30000;
  var token = null, data = null, blockedSeen = false, timer = null, poller = null;
  var host, root, box, panel, modal, returnFocus = null, status = "";
  var nativeFetch = window.fetch;

  function own(url) { return String(url).indexOf(base + "/") === 0; }
  function sameSite(url) {
    try { return new URL(url, location.href).origin === location.origin; } catch (e) { return false; }
  }
  function fill(text, values) {
    return text.replace(/\{(\w)\}/g, function (all, key) { return values[key] !== undefined ? values[key] : all; });
  }
  // A clear hint for whoever installs the widget: on the host element and once in the console.
  function hint(next, message) {
    if (!host) { mount(); }
    host.setAttribute("data-solaris-status", next);
    if (message && status !== next && window.console) { window.console.warn("[IA SOLARIS widget] " + message); }
    status = next;
  }

  // LibreChat's own API calls carry its access token: keep the latest one.
  function capture(url, value) {
    var m = /^Bearer\s+(\S+)$/i.exec(value || "");
    if (!m || m[1].indexOf("sol-") === 0 || own(url) || !sameSite(url)) { return; }
    var first = !token;
    token = m[1];
    if (first) { soon(false); }
  }
  function authOf(h) {
    if (!h) { return null; }
    if (typeof h.get === "function") { return h.get("authorization"); }
    if (Array.isArray(h)) {
      for (var i = 0; i < h.length; i++) { if (String(h[i][0]).toLowerCase() === "authorization") { return h[i][1]; } }
      return null;
    }
    for (var k in h) { if (k.toLowerCase() === "authorization") { return h[k]; } }
    return null;
  }
  function drained(body, done) {
    if (!body || !body.getReader) { done(); return; }
    var reader = body.getReader();
    (function pump() { reader.read().then(function (r) { if (r.done) { done(); } else { pump(); } }, done); })();
  }
  if (nativeFetch) {
    window.fetch = function (input, init) {
      var url = typeof input === "string" ? input : (input && input.url) || String(input);
      capture(url, authOf(init && init.headers) || (input && authOf(input.headers)));
      var result = nativeFetch.apply(this, arguments);
      if (WATCH.test(url) && !own(url)) {
        result.then(function (res) { drained(res.clone().body, function () { soon(true); }); }, function () {});
      }
      return result;
    };
  }
  var XHR = window.XMLHttpRequest && window.XMLHttpRequest.prototype;
  if (XHR) {
    var xopen = XHR.open, setHeader = XHR.setRequestHeader, send = XHR.send;
    XHR.open = function (method, url) { this.__solUrl = String(url); return xopen.apply(this, arguments); };
    XHR.setRequestHeader = function (name, value) {
      if (String(name).toLowerCase() === "authorization") { capture(this.__solUrl || "", value); }
      return setHeader.apply(this, arguments);
    };
    XHR.send = function () {
      if (WATCH.test(this.__solUrl || "") && !own(this.__solUrl)) {
        this.addEventListener("loadend", function () { soon(true); });
      }
      return send.apply(this, arguments);
    };
  }

  function request(path, method, body) {
    var headers = {}, sent = token;
    // Another origin knows the user only by LibreChat's token: wait until the page has used it.
    if (!sent && !sameSite(base)) {
      hint("waiting-for-token", "");
      return Promise.reject({ status: 0 });
    }
    if (sent) { headers.Authorization = "Bearer " + sent; }
    if (body) { headers["Content-Type"] = "application/json"; }
    return nativeFetch.call(window, base + path, {
      method: method || "GET", headers: headers, body: body ? JSON.stringify(body) : undefined,
      // The bearer token identifies the user: never send Solaris's cookies along with it.
      credentials: sent ? "omit" : "same-origin", cache: "no-store"
    }).then(function (res) {
      return res.json().then(function (json) { return json; }, function () { return {}; }).then(function (json) {
        if (res.ok) { return json; }
        var message = (json.error && json.error.message) || "HTTP " + res.status;
        if (res.status === 401 && sent) {
          if (token === sent) { token = null; }
          hint("token-rejected", "Solaris could not verify LibreChat's access token (" + message + "). " +
            "Check that Solaris's LIBRECHAT_JWT_SECRET equals LibreChat's JWT_SECRET, that LibreChat's " +
            "JWT_SECRET is not blank and OPENID_REUSE_TOKENS is off, and that the user has chatted once " +
            "through the integration. See docs/widget.md.");
        }
        throw { status: res.status, message: message };
      });
    }, function () {
      hint("unreachable", "Solaris did not answer at " + base + ".");
      throw { status: 0, message: "network" };
    });
  }
  function soon(afterChat) {
    clearTimeout(timer);
    timer = setTimeout(function () { refresh(afterChat); }, afterChat ? 400 : 0);
  }
  function refresh(afterChat) {
    if (afterChat) { blockedSeen = false; }
    return request("/api/v1/me/balance").then(render, function () { visible(false); });
  }
  function fmt(n) { return new Intl.NumberFormat(EN ? "en" : "pt-BR").format(n); }
  function pct(p) { return EN ? p : String(p).replace(".", ","); }
  function brl(cents) {
    var whole = fmt(Math.floor(cents / 100)), part = ("0" + (cents % 100)).slice(-2);
    return "R$ " + whole + (EN ? "." : ",") + part;
  }
  function when(days) {
    return days <= 0 ? T.today : days === 1 ? T.tomorrow : fill(T.inDays, { n: days });
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function button(text, cls, label) {
    var b = el("button", cls, text);
    b.type = "button";
    if (label) { b.setAttribute("aria-label", label); }
    return b;
  }

  var CSS = ":host{all:initial}*{box-sizing:border-box;font:14px/1.4 system-ui,sans-serif}[hidden]{display:none!important}" +
    ":focus-visible{outline:3px solid #4dabf7;outline-offset:2px}" +
    ".c{position:fixed;z-index:2147483000;background:#1d2330;color:#fff;border:0;border-radius:20px;padding:8px 14px;cursor:pointer;box-shadow:0 4px 16px rgba(0,0,0,.3);display:flex;gap:8px;align-items:center;max-width:calc(100vw - 32px)}" +
    ".c b{font-weight:700}.m{width:48px;height:6px;background:#495057;border-radius:3px;overflow:hidden}.m i{display:block;height:100%;background:#8ce99a}" +
    ".alert .m i{background:#ffc078}.blocked .m i{background:#ffa8a8}" +
    ".p{position:fixed;z-index:2147483000;background:#fff;color:#1d2330;border-radius:12px;padding:12px 16px;box-shadow:0 8px 30px rgba(0,0,0,.3);width:min(320px,calc(100vw - 32px))}" +
    ".p .x{position:absolute;top:6px;right:8px;background:none;border:0;font-size:20px;line-height:1;color:#1d2330;cursor:pointer;padding:4px 8px}" +
    ".p div{margin:2px 28px 2px 0}.p a,.d a{color:#c2410c}.p a{display:block;margin-top:6px}.muted{color:#5d6675}" +
    ".o{position:fixed;inset:0;z-index:2147483001;background:rgba(20,24,33,.55);display:flex;align-items:center;justify-content:center;padding:16px}" +
    ".d{background:#fff;color:#1d2330;border-radius:12px;padding:20px;max-width:480px;width:100%;max-height:90vh;overflow:auto}.d h2{font-size:18px;font-weight:700;margin:0 0 8px}.d h2:focus{outline:none}.blk h2{color:#c92a2a}" +
    ".d ul{padding:0;list-style:none;margin:8px 0}.d li{padding:6px 0;border-bottom:1px solid #dfe3ea;display:flex;flex-wrap:wrap;gap:4px 8px;align-items:center;justify-content:space-between}" +
    ".d button{background:#c2410c;color:#fff;border:0;border-radius:6px;padding:8px 14px;cursor:pointer}.d button[disabled]{opacity:.6}.d .s{background:#fff;color:#1d2330;border:1px solid #8a93a3}" +
    ".d .acts{display:flex;gap:8px;flex-wrap:wrap;margin-top:12px}.ord{border:1px solid #dfe3ea;border-radius:10px;padding:10px 12px;margin:8px 0;background:#fbfcfd}" +
    ".ord img{display:block;width:200px;height:200px;image-rendering:pixelated;border:1px solid #dfe3ea;margin:8px 0;background:#fff}" +
    ".ord .cp{display:flex;gap:6px}.ord input{flex:1;min-width:0;padding:6px;border:1px solid #8a93a3;border-radius:6px;font-family:ui-monospace,monospace}" +
    ".ord .ok{color:#2b8a3e;font-size:17px;font-weight:700}.ord .ins{white-space:pre-line}.err{color:#c92a2a}";

  function place(node, lifted) {
    var side = position.split("-")[1], edge = TOP ? "top" : "bottom";
    node.style[side] = "16px";
    node.style[edge] = offset + (lifted ? 48 : 0) + "px";
  }
  // An inline style on the host: the shadow's `:host{all:initial}` would undo a hidden attribute.
  function visible(on) { host.style.display = on ? "" : "none"; }
  function mount() {
    host = el("div");
    host.id = "solaris-widget";
    visible(false);
    host.setAttribute("data-solaris-position", position);
    document.body.appendChild(host);
    root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    if (root.adoptedStyleSheets && window.CSSStyleSheet && "replaceSync" in CSSStyleSheet.prototype) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      var style = el("style");
      style.textContent = CSS;
      root.appendChild(style);
    }
    box = button("", "c");
    box.setAttribute("aria-expanded", "false");
    box.setAttribute("aria-controls", "solaris-panel");
    box.onclick = function () { panelShow(panel.hidden); };
    place(box, false);
    panel = el("div", "p");
    panel.id = "solaris-panel";
    panel.setAttribute("role", "region");
    panel.setAttribute("aria-label", "IA SOLARIS");
    panel.hidden = true;
    place(panel, true);
    root.appendChild(box);
    root.appendChild(panel);
    document.addEventListener("keydown", keys);
  }
  function panelShow(show) {
    panel.hidden = !show;
    box.setAttribute("aria-expanded", String(show));
    if (show) { panel.querySelector("a, button").focus(); } else { box.focus(); }
  }
  // Links go to Solaris's public address (SOLARIS_PUBLIC_URL), where the user's session lives.
  function link(text, url) {
    var a = el("a", "", text);
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener";
    a.onclick = function (event) { if (token) { event.preventDefault(); signedOpen(url); } };
    return a;
  }
  // The LibreChat token never goes in a URL: it buys a single-use, short-lived sign-in link.
  function signedOpen(url) {
    var win = window.open("about:blank", "_blank");
    request("/api/v1/me/login-link", "POST", { next: new URL(url).pathname }).then(function (r) {
      if (win) { win.opener = null; win.location = r.url; } else { location.href = r.url; }
    }, function () { if (win) { win.location = url; } });
  }
  function renewalLine(r) {
    var parts = [];
    if (r.credits) { parts.push("+" + fmt(r.credits)); }
    if (r.expiring) { parts.push(fill(r.expiring === 1 ? T.expires : T.expire, { n: fmt(r.expiring) })); }
    return fill(T.renews, { w: when(r.days), x: parts.join("; ") });
  }
  function render(d) {
    data = d;
    if (!host) { mount(); }
    hint("ok", "");
    visible(true);
    box.className = "c " + d.state;
    box.textContent = "";
    box.appendChild(el("b", "", fmt(d.available)));
    box.appendChild(el("span", "", T.credits));
    var meter = el("span", "m"), bar = el("i");
    bar.style.width = Math.min(100, parseFloat(d.used_percent)) + "%";
    meter.appendChild(bar);
    box.appendChild(meter);
    box.appendChild(el("span", "", pct(d.used_percent) + " %"));
    box.setAttribute("aria-label", "IA SOLARIS: " + fmt(d.available) + " " + T.available + ", " + pct(d.used_percent) + " % " + T.used);
    var wasOpen = !panel.hidden && panel.contains(root.activeElement);
    panel.textContent = "";
    var x = button("×", "x", T.closePanel);
    x.onclick = function () { panelShow(false); };
    panel.appendChild(x);
    panel.appendChild(el("div", "", fmt(d.available) + " " + T.available));
    if (d.renewal) { panel.appendChild(el("div", "muted", renewalLine(d.renewal))); }
    panel.appendChild(el("div", "muted", fill(T.base, { p: pct(d.used_percent), t: fmt(d.granted || 0) })));
    if (d.plan) { panel.appendChild(el("div", "", T.plan + ": " + d.plan.name)); }
    if (d.pending_purchase) { panel.appendChild(el("div", "", orderTitle(d.pending_purchase))); }
    panel.appendChild(link(T.statement, d.statement_url));
    panel.appendChild(link(T.buy, d.pending_purchase ? d.pending_purchase.url : d.purchase_url));
    if (wasOpen) { x.focus(); }
    if (modal && modal.contains(root.activeElement) && modal.querySelector(".ord")) { return; }
    if (d.state === "blocked") {
      if (!blockedSeen) { blockedSeen = true; show(true); }
    } else if (d.state === "alert" && !dismissed(d.alert_key)) {
      if (!modal) { show(false); }
    } else if (modal && !modal.querySelector(".ok")) {
      hide();
    }
  }
  function dismissed(key) { try { return !!localStorage.getItem(DISMISSED + key); } catch (e) { return false; } }
  function orderTitle(p) {
    return fill(T.order, { i: p.id, v: brl(p.price_cents), s: p.status === "pending" ? T.pending : T.st[p.status] || p.status });
  }

  // --- the modal: a focus trap, Escape, focus returned where it was ---

  function focusables() {
    return Array.prototype.filter.call(modal.querySelectorAll("button, a[href], input"), function (node) {
      return !node.disabled && node.offsetParent !== null;
    });
  }
  // On the document: a modal closes on Escape wherever the focus is; the panel, when it has it.
  function keys(event) {
    if (event.key === "Escape") {
      if (modal) { event.stopPropagation(); dismiss(); }
      else if (!panel.hidden && event.target === host) { event.stopPropagation(); panelShow(false); }
      return;
    }
    if (event.key !== "Tab" || !modal) { return; }
    var items = focusables();
    if (!items.length) { event.preventDefault(); return; }
    var first = items[0], last = items[items.length - 1], active = root.activeElement || document.activeElement;
    if (event.shiftKey && (active === first || !modal.contains(active))) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && (active === last || !modal.contains(active))) { event.preventDefault(); first.focus(); }
  }
  // Focus that leaves the widget while the modal is open comes back into it.
  document.addEventListener("focusin", function (event) {
    if (modal && event.target !== host) { var items = focusables(); if (items.length) { items[0].focus(); } }
  });
  function dismiss() {
    var d = data;
    if (d && d.state === "alert") { try { localStorage.setItem(DISMISSED + d.alert_key, "1"); } catch (e) { /* private mode */ } }
    hide();
  }
  function hide() {
    if (!modal) { return; }
    clearInterval(poller);
    modal.remove();
    modal = null;
    var back = returnFocus;
    returnFocus = null;
    if (back && back.focus && document.contains(back)) { back.focus(); }
  }
  function show(blocked) {
    var d = data, kept = returnFocus;
    if (modal) { clearInterval(poller); modal.remove(); }
    returnFocus = kept || document.activeElement;
    modal = el("div", "o");
    var dialog = el("div", "d" + (blocked ? " blk" : ""));
    dialog.setAttribute("role", blocked ? "alertdialog" : "dialog");
    dialog.setAttribute("aria-modal", "true");
    dialog.setAttribute("aria-labelledby", "solaris-dialog-title");
    dialog.setAttribute("aria-describedby", "solaris-dialog-text");
    var title = el("h2", "", blocked ? T.blockedTitle : T.alertTitle);
    title.id = "solaris-dialog-title";
    title.tabIndex = -1;
    dialog.appendChild(title);
    var text = blocked ? T.blockedText + " " + (d.pending_purchase ? T.payBelow : T.buyBelow) :
      fill(T.alertText, { p: pct(d.used_percent), a: fmt(d.available) });
    if (blocked && d.renewal && d.renewal.credits) { text += " " + fill(T.wait, { w: when(d.renewal.days), c: fmt(d.renewal.credits) }); }
    if (!blocked && d.renewal) { text += " " + renewalLine(d.renewal) + "."; } else if (blocked) { text += "."; }
    var p = el("p", "", text);
    p.id = "solaris-dialog-text";
    dialog.appendChild(p);
    var area = el("div");
    dialog.appendChild(area);
    var list = packages(d, area);
    if (d.pending_purchase) {
      list.hidden = true;
      area.appendChild(order(d.pending_purchase));
      var other = button(T.other, "s");
      other.setAttribute("aria-expanded", "false");
      other.onclick = function () {
        list.hidden = !list.hidden;
        other.setAttribute("aria-expanded", String(!list.hidden));
      };
      dialog.appendChild(other);
    }
    dialog.appendChild(list);
    var mail = el("p", "muted", T.mail + " ");
    var address = el("a", "", d.purchase_email);
    address.href = "mailto:" + d.purchase_email;
    mail.appendChild(address);
    dialog.appendChild(mail);
    var acts = el("div", "acts");
    var close = button(blocked ? T.close : T.ok, blocked ? "s" : "");
    close.onclick = dismiss;
    acts.appendChild(close);
    dialog.appendChild(acts);
    modal.appendChild(dialog);
    root.appendChild(modal);
    title.focus();
  }
  function packages(d, area) {
    var list = el("ul");
    d.packages.forEach(function (pk) {
      var item = el("li");
      item.appendChild(el("span", "", pk.name + " — " + fmt(pk.credits) + " " + T.credits + " · " + brl(pk.price_cents)));
      var pix = d.payment_method === "pix";
      var buy = button(pix ? T.payPix : T.request, "", fill(pix ? T.payPixFor : T.requestFor, { n: pk.name, v: brl(pk.price_cents) }));
      buy.onclick = function () { checkout(pk, buy, list, area); };
      item.appendChild(buy);
      list.appendChild(item);
    });
    return list;
  }

  // --- buying: the charge (or manual order), then its status until it is paid ---

  function checkout(pk, buy, list, area) {
    buy.disabled = true;
    buy.textContent = T.wait2;
    request("/api/v1/me/purchases", "POST", { package: pk.id }).then(function (purchase) {
      list.hidden = true;
      area.textContent = "";
      var block = order(purchase);
      area.appendChild(block);
      (block.querySelector("button") || block).focus();
    }, function (error) {
      buy.disabled = false;
      buy.textContent = data.payment_method === "pix" ? T.payPix : T.request;
      var failure = el("p", "err", T.failed + " " + (error.message || ""));
      failure.setAttribute("role", "alert");
      area.textContent = "";
      area.appendChild(failure);
    });
  }
  function order(p) {
    var block = el("div", "ord");
    block.tabIndex = -1;
    block.setAttribute("role", "status");
    block.appendChild(el("strong", "", orderTitle(p)));
    if (p.status === "paid") {
      block.appendChild(el("p", "ok", fill(T.paid, { c: fmt(p.credits) })));
      return block;
    }
    if (p.status !== "pending") {
      block.appendChild(el("p", "", fill(T.gone, { s: T.st[p.status] || p.status })));
      return block;
    }
    if (p.pix) {
      block.appendChild(el("p", "", fill(T.payBefore, {
        v: brl(p.price_cents),
        w: new Date(p.pix.expires_at).toLocaleString(EN ? "en" : "pt-BR", { dateStyle: "short", timeStyle: "short" })
      })));
      var img = el("img");
      img.src = "data:image/png;base64," + p.pix.qr_code_base64;
      img.alt = fill(T.qr, { v: brl(p.price_cents) });
      block.appendChild(img);
      var label = el("label", "", T.code);
      var row = el("div", "cp"), code = el("input");
      code.readOnly = true;
      code.value = p.pix.qr_code;
      code.id = "solaris-pix-code";
      label.htmlFor = code.id;
      var copy = button(T.copy, "");
      copy.onclick = function () {
        var done = function () { copy.textContent = T.copied; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(code.value).then(done, function () { code.select(); });
        } else { code.select(); document.execCommand("copy"); done(); }
      };
      row.appendChild(code);
      row.appendChild(copy);
      block.appendChild(label);
      block.appendChild(row);
      block.appendChild(el("p", "muted", T.bank));
    } else if (p.instructions) {
      block.appendChild(el("p", "", T.howTo));
      block.appendChild(el("p", "ins", p.instructions));
    }
    watch(p.id, block, p.pix ? POLL_PIX_MS : POLL_MANUAL_MS);
    return block;
  }
  function watch(id, block, every) {
    clearInterval(poller);
    poller = setInterval(function () {
      if (!block.isConnected) { clearInterval(poller); return; }
      request("/api/v1/me/purchases/" + id).then(function (p) {
        if (p.status === "pending") { return; }
        clearInterval(poller);
        var fresh = order(p);
        block.replaceWith(fresh);
        fresh.focus();
        if (p.status === "paid" && modal) {
          var title = modal.querySelector("h2");
          title.textContent = T.paidTitle;
          title.parentNode.className = "d";
          refresh(false);
        }
      }, function () { /* the next tick asks again */ });
    }, every);
  }

  function start() {
    mount();
    refresh(false);
    setInterval(function () { refresh(false); }, every);
  }
  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();
