/*! Livechat widget loader.
 * Embed: <script src="{BASE}/widget.js" data-site="{SITE_KEY}" data-lang="fr" async></script>
 * data-lang is optional: without it the browser's language; French for fr*, English for anything else.
 * Draws the launcher in a Shadow DOM and loads the panel (panel.js, served gzipped and immutable at
 * /widget.js?panel=<hash>) on first interaction or when the page is idle. No cookies; the API is not called
 * before the visitor opens the chat or holds a token for the site.
 * One global: window.LivechatWidget (the hand-off between this loader and the panel). */
(function (w, d) {
  "use strict";
  var s = d.currentScript;
  var site = s && s.getAttribute("data-site");
  var base;
  try {
    base = new URL(s.src, location.href).origin;
  } catch (e) {
    return;
  }
  if (!site || !/^https?:/.test(base)) return;
  var lang = /^fr/i.test(s.getAttribute("data-lang") || w.navigator.language || "") ? "fr" : "en";

  var ns = w.LivechatWidget;
  if (!ns || !ns.q) ns = w.LivechatWidget = { q: [] };
  for (var i = 0; i < ns.q.length; i++) if (ns.q[i].site === site) return; // the snippet twice: one widget

  var PANEL = base + "/widget.js?panel=__PANEL_VERSION__";
  var SVG_NS = "http://www.w3.org/2000/svg";
  var CSS =
    ".w{all:initial;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;" +
    "color:#111827;--c:#2563eb;--t:#fff}" +
    ".w *{box-sizing:border-box}" +
    ".l{all:unset;position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;z-index:2;" +
    "background:var(--c);color:var(--t);display:flex;align-items:center;justify-content:center;cursor:pointer;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.28);transition:transform .15s}" +
    ".l:hover{transform:scale(1.06)}" +
    ".l:focus-visible{outline:3px solid #111827;outline-offset:3px;box-shadow:0 0 0 3px #fff}" +
    ".l svg{width:28px;height:28px;fill:currentColor}" +
    ".l .i2,.open .l .i1{display:none}.open .l .i2{display:block}" +
    ".l[aria-busy=true]{opacity:.75;cursor:progress}" +
    ".n{position:fixed;right:14px;bottom:62px;z-index:3;min-width:20px;height:20px;padding:0 6px;" +
    "border-radius:10px;background:#dc2626;color:#fff;font:700 12px/20px system-ui,sans-serif;text-align:center;" +
    "pointer-events:none}" +
    ".n[hidden]{display:none}" +
    "@media (prefers-reduced-motion:reduce){.l{transition:none}}";

  function get(k) {
    try {
      return w.localStorage.getItem("lcw:" + site + ":" + k);
    } catch (e) {
      return null; // storage blocked: the widget still works, without memory across pages
    }
  }

  function icon(cls, path) {
    var svg = d.createElementNS(SVG_NS, "svg");
    var p = d.createElementNS(SVG_NS, "path");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", cls);
    p.setAttribute("d", path);
    svg.appendChild(p);
    return svg;
  }

  var inst = { site: site, base: base, lang: lang, want: false, open: false };

  function load() {
    if (ns.mount || ns.loading) return;
    ns.loading = 1;
    var t = d.createElement("script");
    t.src = PANEL;
    t.async = true;
    t.onerror = function () {
      ns.loading = 0; // offline or blocked: try again on the next interaction
      t.remove();
      for (var j = 0; j < ns.q.length; j++) ns.q[j].btn.removeAttribute("aria-busy");
    };
    (d.head || d.documentElement).appendChild(t);
  }

  function idle(f) {
    if (w.requestIdleCallback) w.requestIdleCallback(f, { timeout: 5000 });
    else setTimeout(f, 2000);
  }

  function start() {
    if (!d.body) return d.addEventListener("DOMContentLoaded", start);
    var host = d.createElement("div");
    if (!host.attachShadow) return;
    host.setAttribute("data-livechat-widget", "");
    // Inline !important beats any stylesheet rule of the host page, `* { all: unset !important }` included.
    host.style.cssText =
      "all:initial!important;display:block!important;position:fixed!important;right:0!important;" +
      "bottom:0!important;width:0!important;height:0!important;z-index:2147483000!important";
    var root = host.attachShadow({ mode: "open" });
    var style = d.createElement("style");
    style.textContent = CSS;
    var wrap = d.createElement("div");
    wrap.className = "w";
    wrap.lang = lang; // the launcher's and the panel's words are read in their language
    var color = get("color");
    if (color && /^"#[0-9a-fA-F]{6}"$/.test(color)) wrap.style.setProperty("--c", color.slice(1, 8));
    var btn = d.createElement("button");
    btn.type = "button";
    btn.className = "l";
    btn.setAttribute("aria-label", lang === "fr" ? "Ouvrir la discussion" : "Open chat");
    btn.setAttribute("aria-expanded", "false");
    btn.appendChild(icon("i1", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2z"));
    btn.appendChild(icon("i2", "M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z"));
    var badge = d.createElement("span");
    badge.className = "n";
    badge.hidden = true;
    badge.setAttribute("aria-hidden", "true");
    wrap.appendChild(btn);
    wrap.appendChild(badge);
    root.appendChild(style);
    root.appendChild(wrap);
    inst.host = host;
    inst.root = root;
    inst.wrap = wrap;
    inst.btn = btn;
    inst.badge = badge;
    btn.addEventListener("click", function () {
      if (inst.toggle) return inst.toggle();
      inst.want = !inst.want;
      inst.restore = false;
      btn.setAttribute("aria-busy", String(inst.want));
      load();
    });
    btn.addEventListener("pointerenter", load);
    btn.addEventListener("focus", load);
    d.body.appendChild(host);
    ns.q.push(inst);
    if (get("open") && get("token")) inst.want = inst.restore = true; // open on the previous page of the site
    if (ns.mount) ns.mount(inst);
    else if (inst.want) load();
    else idle(load);
  }

  start();
})(window, document);
