/* IA SOLARIS credit widget: <script src="https://SOLARIS/static/solaris/widget.js" defer></script>
 * Floating counter, the 80 % alert and the blocking modal, a link to the statement. No dependencies.
 * Options (data-* on the script tag): solaris-url, interval (seconds), lang (pt-BR | en). */
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
  var T = EN ? {
    credits: "credits", used: "used", statement: "See statement", buy: "Request purchase",
    alertTitle: "Your credits are running low", alertText: "You have used {p} % of your credits; {a} are left.",
    blockedTitle: "Your credits are exhausted", blockedText: "New messages are refused until more credits arrive. To buy credits:",
    mail: "Or write to", ok: "Got it", close: "Close", plan: "Plan", renews: "Renews"
  } : {
    credits: "créditos", used: "usado", statement: "Ver extrato", buy: "Solicitar compra",
    alertTitle: "Seus créditos estão acabando", alertText: "Você já usou {p} % dos seus créditos; restam {a}.",
    blockedTitle: "Seus créditos acabaram", blockedText: "Novas mensagens serão recusadas até chegarem mais créditos. Para comprar:",
    mail: "Ou escreva para", ok: "Entendi", close: "Fechar", plan: "Plano", renews: "Renova em"
  };
  var WATCH = /\/chat\/completions|\/api\/ask|\/api\/agents/;
  var DISMISSED = "solaris-alert-dismissed:";
  var token = null, data = null, blockedSeen = false, timer = null, root, box, panel, modal;
  var nativeFetch = window.fetch;

  function own(url) { return String(url).indexOf(base + "/") === 0; }
  function sameSite(url) {
    try { return new URL(url, location.href).origin === location.origin; } catch (e) { return false; }
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
    var open = XHR.open, setHeader = XHR.setRequestHeader, send = XHR.send;
    XHR.open = function (method, url) { this.__solUrl = String(url); return open.apply(this, arguments); };
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
    if (!sent && !sameSite(base)) { return Promise.reject(401); }
    if (sent) { headers.Authorization = "Bearer " + sent; }
    if (body) { headers["Content-Type"] = "application/json"; }
    return nativeFetch.call(window, base + path, {
      method: method || "GET", headers: headers, body: body ? JSON.stringify(body) : undefined,
      credentials: sameSite(base) ? "same-origin" : "omit", cache: "no-store"
    }).then(function (res) {
      if (res.status === 401 && sent && token === sent) { token = null; }
      return res.ok ? res.json() : Promise.reject(res.status);
    });
  }
  function soon(afterChat) {
    clearTimeout(timer);
    timer = setTimeout(function () { refresh(afterChat); }, afterChat ? 400 : 0);
  }
  function refresh(afterChat) {
    if (afterChat) { blockedSeen = false; }
    request("/api/v1/me/balance").then(render, function () { if (root) { root.host.style.display = "none"; } });
  }
  function fmt(n) { return new Intl.NumberFormat(EN ? "en" : "pt-BR").format(n); }
  function pct(p) { return EN ? p : String(p).replace(".", ","); }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  var CSS = ":host{all:initial}*{box-sizing:border-box;font:14px/1.4 system-ui,sans-serif}" +
    ".c{position:fixed;right:16px;bottom:16px;z-index:2147483000;background:#1d2330;color:#fff;border:0;border-radius:20px;padding:8px 14px;cursor:pointer;box-shadow:0 4px 16px rgba(0,0,0,.3);display:flex;gap:8px;align-items:center}" +
    ".c b{font-weight:700}.m{width:48px;height:6px;background:#495057;border-radius:3px;overflow:hidden}.m i{display:block;height:100%;background:#40c057}" +
    ".alert .m i{background:#fd7e14}.blocked .m i{background:#fa5252}.p{position:fixed;right:16px;bottom:64px;z-index:2147483000;background:#fff;color:#1d2330;border-radius:12px;padding:12px 16px;box-shadow:0 8px 30px rgba(0,0,0,.3);min-width:220px}" +
    ".p a,.d a{color:#d9480f;display:block;margin-top:6px}.o{position:fixed;inset:0;z-index:2147483001;background:rgba(20,24,33,.55);display:flex;align-items:center;justify-content:center;padding:16px}" +
    ".d{background:#fff;color:#1d2330;border-radius:12px;padding:20px;max-width:460px;width:100%;max-height:90vh;overflow:auto}.d h2{font-size:18px;font-weight:700;margin:0 0 8px}.blk h2{color:#c92a2a}" +
    ".d ul{padding:0;list-style:none}.d li{padding:6px 0;border-bottom:1px solid #dfe3ea}.d button,.d .b{margin-top:12px;background:#d9480f;color:#fff;border:0;border-radius:6px;padding:8px 14px;cursor:pointer;display:inline-block;text-decoration:none}.d .s{background:#fff;color:#1d2330;border:1px solid #c5cbd6}";

  function mount() {
    var host = el("div");
    host.id = "solaris-widget";
    document.body.appendChild(host);
    root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    var style = el("style");
    style.textContent = CSS;
    root.appendChild(style);
    box = el("button", "c");
    box.type = "button";
    box.setAttribute("aria-expanded", "false");
    box.onclick = function () {
      panel.hidden = !panel.hidden;
      box.setAttribute("aria-expanded", String(!panel.hidden));
    };
    panel = el("div", "p");
    panel.hidden = true;
    root.appendChild(box);
    root.appendChild(panel);
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
  function render(d) {
    data = d;
    if (!root) { mount(); }
    root.host.style.display = "";
    box.className = "c " + d.state;
    box.textContent = "";
    box.appendChild(el("b", "", fmt(d.available)));
    box.appendChild(el("span", "", T.credits));
    var meter = el("span", "m"), fill = el("i");
    fill.style.width = Math.min(100, parseFloat(d.used_percent)) + "%";
    meter.appendChild(fill);
    box.appendChild(meter);
    box.appendChild(el("span", "", pct(d.used_percent) + " %"));
    box.title = pct(d.used_percent) + " % " + T.used;
    panel.textContent = "";
    if (d.plan) { panel.appendChild(el("div", "", T.plan + ": " + d.plan.name)); }
    if (d.renews_at) { panel.appendChild(el("div", "", T.renews + ": " + new Date(d.renews_at).toLocaleDateString(EN ? "en" : "pt-BR"))); }
    panel.appendChild(link(T.statement, d.statement_url));
    panel.appendChild(link(T.buy, d.purchase_url));
    if (d.state === "blocked") {
      if (!blockedSeen) { blockedSeen = true; show(true); }
    } else if (d.state === "alert" && !dismissed(d.alert_key)) {
      show(false);
    } else if (modal) {
      modal.remove();
      modal = null;
    }
  }
  function dismissed(key) { try { return !!localStorage.getItem(DISMISSED + key); } catch (e) { return false; } }
  function show(blocked) {
    if (modal) { modal.remove(); }
    var d = data;
    modal = el("div", "o");
    var dialog = el("div", "d" + (blocked ? " blk" : ""));
    dialog.setAttribute("role", blocked ? "alertdialog" : "dialog");
    dialog.setAttribute("aria-modal", "true");
    dialog.appendChild(el("h2", "", blocked ? T.blockedTitle : T.alertTitle));
    dialog.appendChild(el("p", "", blocked ? T.blockedText : T.alertText.replace("{p}", pct(d.used_percent)).replace("{a}", fmt(d.available))));
    var list = el("ul");
    d.packages.forEach(function (p) {
      var item = el("li", "", p.name + " — " + fmt(p.credits) + " " + T.credits + " · R$ " + (p.price_cents / 100).toFixed(2).replace(".", EN ? "." : ","));
      item.appendChild(link(T.buy, p.request_url));
      list.appendChild(item);
    });
    dialog.appendChild(list);
    var mail = el("p", "", T.mail + " ");
    var address = el("a", "", d.purchase_email);
    address.href = "mailto:" + d.purchase_email;
    address.style.display = "inline";
    mail.appendChild(address);
    dialog.appendChild(mail);
    if (blocked) {
      var buy = link(T.buy, d.purchase_url);
      buy.className = "b";
      dialog.appendChild(buy);
      dialog.appendChild(document.createTextNode(" "));
    }
    var close = el("button", blocked ? "s" : "", blocked ? T.close : T.ok);
    close.type = "button";
    close.onclick = function () {
      if (!blocked) { try { localStorage.setItem(DISMISSED + d.alert_key, "1"); } catch (e) { /* private mode */ } }
      modal.remove();
      modal = null;
    };
    dialog.appendChild(close);
    modal.appendChild(dialog);
    root.appendChild(modal);
    close.focus();
  }

  function start() { refresh(false); setInterval(function () { refresh(false); }, every); }
  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();
