/* Livechat widget: the chat panel, loaded by /widget.js (widget/static/widget/widget.js), which hands over
 * each embed through window.LivechatWidget.q.
 *
 * Plain JavaScript, no framework, no build step. Protocol: CONTRACT.md section 4.
 * - Safe by construction: whatever the server, the bot, an advisor or the visitor wrote reaches the page as
 *   text nodes (textContent); links are <a> elements built for http(s) URLs only; URLs of images and
 *   avatars are checked for http(s). No HTML is ever parsed; no postMessage listener.
 * - Resilient: the outbox (localStorage, per site key) keeps every unacknowledged send with its client_id
 *   and sends it again after each reconnect until the echo carrying that client_id arrives; the server keeps
 *   one item per client_id and the panel one per id and per seq, so nothing is lost or doubled.
 * - No cookies: the visitor token lives in localStorage under "lcw:<site key>:token".
 */
(function (w, d) {
  "use strict";
  var ns = w.LivechatWidget;
  if (!ns || !ns.q || ns.mount) return;

  var MAX_TEXT = 4000;
  var MAX_IMAGE = 10 * 1024 * 1024;
  var IMAGE_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"];
  var PING_MS = 25000; // keep-alive, and a way to notice a socket that died silently
  var DEAD_MS = 40000; // no frame at all for that long: the socket is dead
  var RESEND_MS = 15000; // an unacknowledged send goes again after that long on a live socket
  var TYPING_MS = 2000; // the server forwards at most one typing frame per 2 s anyway
  var SHOW_TYPING_MS = 4000;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var ICONS = {
    send: "M3 20.5 21.5 12 3 3.5v6.6L15 12 3 13.9z",
    clip: "M16.5 6.5v10a4.5 4.5 0 0 1-9 0V6a3 3 0 0 1 6 0v9.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V6a4.5 4.5 0 0 0-9 0v10.5a6 6 0 0 0 12 0v-10z",
    close: "M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z"
  };
  // What the visitor reads, by short id: English, and French under the same ids (English stands in for a missing
  // one). {x} is filled in by t(). Strict JSON between "var WORDS = " and the next ";": widget/tests/test_i18n.py
  // parses it. The bot's and advisors' texts are theirs and never go through here.
  var WORDS = {"en": {
    "open": "Open chat",
    "close": "Close chat",
    "unread1": "Open chat, {n} unread message",
    "unreadN": "Open chat, {n} unread messages",
    "chat": "Chat",
    "chatWith": "Chat with {name}",
    "minimize": "Minimize chat",
    "messages": "Messages",
    "connecting": "Connecting…",
    "online": "Connected",
    "reconnecting": "Connection lost, reconnecting…",
    "offline": "Offline: your messages will be sent when you are back online",
    "unavailable": "Chat unavailable right now",
    "noStart": "The chat could not start. ",
    "again": "Try again",
    "waiting": "Waiting for an advisor…",
    "closed": "Conversation closed",
    "b2b": "Back to chatbot",
    "b2bWait": "Could not go back to the chatbot: please wait a moment.",
    "b2bFail": "Could not go back to the chatbot.",
    "trMail": "you@example.com",
    "trLabel": "Your e-mail for the transcript",
    "trSend": "Email me the transcript",
    "trSent": "Sent ✓",
    "trMany": "Too many; try later",
    "trFail": "Not sent; retry",
    "preview": "Preview of the image to send",
    "sendImg": "Send image",
    "remove": "Remove",
    "yourMsg": "Your message",
    "write": "Write a message…",
    "attach": "Attach an image",
    "imgToSend": "Image to send",
    "send": "Send",
    "rateQ": "How was this conversation?",
    "rates": "very bad|bad|OK|good|very good",
    "rateOf": "{n} out of 5, {word}",
    "comment": "A comment (optional)",
    "commentLbl": "Comment (optional)",
    "rateSend": "Send rating",
    "rateFirst": "Choose a face from 1 to 5 first.",
    "thanks": "Thank you for your rating.",
    "rated": "This conversation was rated already.",
    "rateFail": "Your rating could not be sent. ",
    "rateNet": "Your rating could not be sent: check your connection.",
    "someone": "Someone",
    "typing": "{name} is typing…",
    "you": "You",
    "advisor": "Advisor",
    "bot": "Bot",
    "youSaid": "You said:",
    "said": " said:",
    "imgSent": "Image you sent",
    "imgFrom": "Image from {name}",
    "choices": "Choices",
    "mailPh": "name@example.com",
    "numPh": "A number, e.g. 42",
    "mailHint": "Please type an e-mail address, e.g. name@example.com.",
    "numHint": "Please type a number (digits only).",
    "sending": "Sending…",
    "later": "Not sent yet: will be sent when the chat is connected",
    "notSent": "Not sent: {why}",
    "tooLong": "the message is too long ({n} characters at most).",
    "refused": "the message was refused.",
    "badFile": "This file is not an image we can send: use JPEG, PNG, GIF or WebP under 10 MB.",
    "notYet": "The chat is not connected yet: please try again in a moment.",
    "youImg": "You sent an image",
    "imgSending": "Image you are sending",
    "retry": "Retry",
    "imgBig": "Not sent: the image is too large (10 MB at most).",
    "imgType": "Not sent: this file is not an image we can take (JPEG, PNG, GIF or WebP).",
    "busy": "too many messages at once; wait a little.",
    "serverNo": "the server did not take it.",
    "noNet": "no connection.",
    "msgLong": "Your message is too long: {max} characters at most ({n} now)."
  }, "fr": {
    "open": "Ouvrir la discussion",
    "close": "Fermer la discussion",
    "unread1": "Ouvrir la discussion, {n} message non lu",
    "unreadN": "Ouvrir la discussion, {n} messages non lus",
    "chat": "Discussion",
    "chatWith": "Discussion avec {name}",
    "minimize": "Réduire la discussion",
    "messages": "Messages",
    "connecting": "Connexion…",
    "online": "Connecté",
    "reconnecting": "Connexion perdue, reconnexion…",
    "offline": "Hors ligne\u00a0: vos messages partiront dès votre retour en ligne",
    "unavailable": "Discussion indisponible pour le moment",
    "noStart": "La discussion n’a pas pu démarrer. ",
    "again": "Réessayer",
    "waiting": "En attente d’un conseiller…",
    "closed": "Conversation terminée",
    "b2b": "Revenir au chatbot",
    "b2bWait": "Impossible de revenir au chatbot\u00a0: patientez un instant.",
    "b2bFail": "Impossible de revenir au chatbot.",
    "trMail": "vous@exemple.fr",
    "trLabel": "Votre e-mail pour recevoir la transcription",
    "trSend": "M’envoyer la transcription",
    "trSent": "Envoyée ✓",
    "trMany": "Trop de demandes\u00a0; réessayez plus tard",
    "trFail": "Échec\u00a0; réessayez",
    "preview": "Aperçu de l’image à envoyer",
    "sendImg": "Envoyer l’image",
    "remove": "Retirer",
    "yourMsg": "Votre message",
    "write": "Écrivez un message…",
    "attach": "Joindre une image",
    "imgToSend": "Image à envoyer",
    "send": "Envoyer",
    "rateQ": "Comment s’est passé cet échange\u00a0?",
    "rates": "très mauvais|mauvais|correct|bon|très bon",
    "rateOf": "{n} sur 5, {word}",
    "comment": "Un commentaire (facultatif)",
    "commentLbl": "Commentaire (facultatif)",
    "rateSend": "Envoyer la note",
    "rateFirst": "Choisissez d’abord un visage, de 1 à 5.",
    "thanks": "Merci pour votre note.",
    "rated": "Cette conversation a déjà été notée.",
    "rateFail": "Votre note n’a pas pu être envoyée. ",
    "rateNet": "Votre note n’a pas pu être envoyée\u00a0: vérifiez votre connexion.",
    "someone": "Quelqu’un",
    "typing": "{name} est en train d’écrire…",
    "you": "Vous",
    "advisor": "Conseiller",
    "bot": "Chatbot",
    "youSaid": "Vous avez dit\u00a0:",
    "said": " a dit\u00a0:",
    "imgSent": "Image que vous avez envoyée",
    "imgFrom": "Image de {name}",
    "choices": "Choix",
    "mailPh": "nom@exemple.fr",
    "numPh": "Un nombre, par ex. 42",
    "mailHint": "Saisissez une adresse e-mail, par ex. nom@exemple.fr.",
    "numHint": "Saisissez un nombre (chiffres uniquement).",
    "sending": "Envoi…",
    "later": "Pas encore envoyé\u00a0: partira dès que la discussion sera connectée",
    "notSent": "Échec de l’envoi\u00a0: {why}",
    "tooLong": "le message est trop long ({n} caractères au maximum).",
    "refused": "le message a été refusé.",
    "badFile": "Ce fichier n’est pas une image que nous pouvons envoyer\u00a0: JPEG, PNG, GIF ou WebP de moins de 10 Mo.",
    "notYet": "La discussion n’est pas encore connectée\u00a0: réessayez dans un instant.",
    "youImg": "Vous avez envoyé une image",
    "imgSending": "Image en cours d’envoi",
    "retry": "Réessayer",
    "imgBig": "Échec de l’envoi\u00a0: l’image est trop lourde (10 Mo au maximum).",
    "imgType": "Échec de l’envoi\u00a0: ce fichier n’est pas une image acceptée (JPEG, PNG, GIF ou WebP).",
    "busy": "trop de messages à la fois\u00a0; patientez un peu.",
    "serverNo": "le serveur ne l’a pas acceptée.",
    "noNet": "pas de connexion.",
    "msgLong": "Votre message est trop long\u00a0: {max} caractères au maximum ({n} actuellement)."
  }};
  var CSS =
    ".p{position:fixed;right:20px;bottom:88px;z-index:1;width:370px;max-width:calc(100vw - 40px);" +
    "height:600px;max-height:calc(100vh - 108px);display:flex;flex-direction:column;overflow:hidden;" +
    "background:#fff;border-radius:14px;box-shadow:0 10px 34px rgba(0,0,0,.28);text-align:left}" +
    ".p[hidden],[hidden]{display:none!important}" +
    ".h{display:flex;align-items:center;gap:10px;padding:12px 12px 12px 14px;background:var(--c);color:var(--t)}" +
    ".av{flex:none;width:36px;height:36px;border-radius:50%;overflow:hidden;display:flex;align-items:center;" +
    "justify-content:center;background:rgba(255,255,255,.25);font-weight:700;font-size:15px;text-transform:uppercase}" +
    ".av img{width:100%;height:100%;object-fit:cover}" +
    ".av.s{width:22px;height:22px;font-size:11px;background:#e5e7eb;color:#374151}" +
    ".tt{flex:1;min-width:0}" +
    ".tt h2{all:unset;display:block;font-size:16px;font-weight:700;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}" +
    ".sub,.st{display:flex;align-items:center;gap:6px;margin:1px 0 0;font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}" +
    ".dot{flex:none;width:8px;height:8px;border-radius:50%;background:#f59e0b;box-shadow:0 0 0 1.5px rgba(255,255,255,.8)}" +
    "[data-s=online] .dot{background:#22c55e}[data-s=offline] .dot,[data-s=unavailable] .dot{background:#ef4444}" +
    ".x,.ib{all:unset;flex:none;display:flex;align-items:center;justify-content:center;width:36px;height:36px;" +
    "border-radius:8px;cursor:pointer}" +
    ".x svg,.ib svg{width:22px;height:22px;fill:currentColor}" +
    ".x:hover{background:rgba(255,255,255,.18)}" +
    ".x:focus-visible{outline:2px solid var(--t);outline-offset:-2px}" +
    ".log{flex:1;overflow-y:auto;display:flex;flex-direction:column;gap:10px;padding:14px 12px;background:#f3f4f6}" +
    ".log:focus-visible{outline:2px solid var(--c);outline-offset:-2px}" +
    ".m{display:flex;flex-direction:column;align-items:flex-start;max-width:85%;align-self:flex-start}" +
    ".m.me{align-self:flex-end;align-items:flex-end}" +
    ".who{display:flex;align-items:center;gap:6px;margin:0 4px 3px;font-size:12px;color:#4b5563}" +
    ".b{padding:8px 12px;border-radius:16px;background:#fff;border:1px solid #e5e7eb;color:#111827;" +
    "white-space:pre-wrap;overflow-wrap:anywhere}" +
    ".me .b{background:var(--c);color:var(--t);border-color:transparent}" +
    ".b a{color:inherit;text-decoration:underline}" +
    ".b img{display:block;max-width:220px;max-height:220px;border-radius:10px}" +
    ".b a:has(img){display:block}" +
    ".m time,.nt{margin:3px 6px 0;font-size:11px;color:#4b5563}" +
    ".ev{align-self:center;align-items:center;max-width:100%;text-align:center;font-size:12px;color:#4b5563}" +
    ".pend .b{opacity:.7}.fail .b{border:1px solid #dc2626}.fail .nt{color:#b91c1c}" +
    ".nt button,.er button{all:unset;cursor:pointer;text-decoration:underline;margin-left:6px;color:inherit}" +
    ".ch{display:flex;flex-wrap:wrap;gap:6px;margin-top:8px}" +
    ".ch button,.bb button{all:unset;cursor:pointer;padding:6px 14px;border-radius:16px;border:1px solid var(--c);" +
    "background:#fff;color:var(--c);font-size:13px;font-weight:600}" +
    ".ch button:hover,.bb button:hover{background:var(--c);color:var(--t)}" +
    ".bb button:disabled{opacity:.5;cursor:default}" +
    ".ty{min-height:18px;margin:0;padding:2px 14px 0;font-size:12px;font-style:italic;color:#4b5563;background:#f3f4f6}" +
    ".bb{display:flex;justify-content:center;padding:8px 12px 0}" +
    ".tr{display:flex;gap:6px;padding:8px 12px 0;font-size:12px}.tr input{flex:1;min-width:0;padding:5px 8px;" +
    "border:1px solid #d1d5db;border-radius:8px;font:inherit}" +
    ".pv{display:flex;align-items:center;gap:10px;padding:8px 12px 0}" +
    ".pv img{width:56px;height:56px;object-fit:cover;border-radius:8px;border:1px solid #e5e7eb}" +
    ".pv button{all:unset;cursor:pointer;padding:6px 12px;border-radius:8px;font-size:13px;font-weight:600}" +
    ".pv .ok{background:var(--c);color:var(--t)}.pv .no{color:#374151;border:1px solid #d1d5db}" +
    ".er,.hint{margin:0;padding:6px 14px 0;font-size:12px;color:#374151}.er{color:#b91c1c}" +
    ".f{display:flex;align-items:flex-end;gap:6px;padding:10px 12px 12px;border-top:1px solid #e5e7eb}" +
    ".f textarea{all:unset;box-sizing:border-box;display:block;flex:1;min-width:0;min-height:38px;max-height:120px;" +
    "overflow-y:auto;" +
    "padding:8px 10px;border:1px solid #d1d5db;border-radius:10px;background:#fff;color:#111827;" +
    "white-space:pre-wrap;overflow-wrap:anywhere;font:inherit;cursor:text}" +
    ".f textarea:focus{border-color:var(--c)}" +
    ".f textarea::placeholder{color:#6b7280}" +
    ".ib{color:#4b5563}.ib:hover{background:#f3f4f6}" +
    ".ib.go{background:var(--c);color:var(--t)}" +
    ".ib:disabled{opacity:.5;cursor:default}" +
    ".ch button:focus-visible,.bb button:focus-visible,.pv button:focus-visible,.ib:focus-visible," +
    ".nt button:focus-visible,.er button:focus-visible,.b a:focus-visible{outline:2px solid #111827;outline-offset:2px}" +
    ".f textarea:focus-visible{outline:2px solid var(--c);outline-offset:1px}" +
    ".rt{margin:8px 12px 0;padding:10px 12px;border:1px solid #e5e7eb;border-radius:12px;background:#fff}" +
    ".rt fieldset{all:unset;display:flex;justify-content:space-between}" +
    ".rt legend{padding:0 0 6px;font-size:14px;font-weight:600;color:#111827}" +
    ".rt label{cursor:pointer;font-size:26px;line-height:1;padding:4px;border-radius:8px;filter:grayscale(1);opacity:.7}" +
    ".rt label:hover,.rt input:checked+label{filter:none;opacity:1;background:#f3f4f6}" +
    ".rt input:focus-visible+label{outline:2px solid #111827}" +
    ".rt textarea{all:unset;box-sizing:border-box;display:block;width:100%;margin-top:8px;padding:6px 8px;" +
    "border:1px solid #d1d5db;border-radius:8px;font-size:13px;white-space:pre-wrap}" +
    ".rt textarea:focus-visible{outline:2px solid var(--c)}" +
    ".rt .ok{all:unset;cursor:pointer;margin-top:8px;padding:6px 14px;border-radius:8px;background:var(--c);" +
    "color:var(--t);font-size:13px;font-weight:600}.rt .ok:focus-visible{outline:2px solid #111827;outline-offset:2px}" +
    ".rt p{margin:0;font-size:13px;color:#374151}" +
    ".sr{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);" +
    "white-space:nowrap;border:0}" +
    "@media (max-width:480px){.p{top:0;left:0;right:0;bottom:0;width:100%;max-width:none;height:100%;" +
    "max-height:none;border-radius:0}.open .l,.open .n{display:none}}";

  // ------------------------------------------------------------------ helpers (no data ever goes through HTML)

  function el(tag, cls, text) {
    var e = d.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }

  function icon(name) {
    var svg = d.createElementNS(SVG_NS, "svg");
    var p = d.createElementNS(SVG_NS, "path");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    p.setAttribute("d", ICONS[name]);
    svg.appendChild(p);
    return svg;
  }

  function button(cls, label, text) {
    var b = el("button", cls, text);
    b.type = "button";
    if (label) b.setAttribute("aria-label", label);
    return b;
  }

  function httpUrl(u) {
    if (typeof u !== "string") return null;
    try {
      var x = new URL(u);
      return x.protocol === "http:" || x.protocol === "https:" ? x.href : null;
    } catch (e) {
      return null;
    }
  }

  function newId() {
    var a = new Uint8Array(16);
    w.crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (x) { return (x + 256).toString(16).slice(1); }).join("");
  }

  function store(site) {
    var prefix = "lcw:" + site + ":";
    return {
      get: function (k) {
        try {
          var v = w.localStorage.getItem(prefix + k);
          return v == null ? null : JSON.parse(v);
        } catch (e) {
          return null;
        }
      },
      set: function (k, v) {
        try {
          if (v == null) w.localStorage.removeItem(prefix + k);
          else w.localStorage.setItem(prefix + k, JSON.stringify(v));
        } catch (e) {
          // storage full or blocked: the in-memory state carries on
        }
      }
    };
  }

  var URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;

  // Text with its http(s) URLs made clickable; everything else stays a text node.
  function richText(parent, text) {
    text = text == null ? "" : String(text);
    var last = 0;
    var m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text))) {
      var raw = m[0].replace(/[.,;:!?)\]}]+$/, "");
      var href = httpUrl(raw);
      if (!href) continue;
      if (m.index > last) parent.appendChild(d.createTextNode(text.slice(last, m.index)));
      var a = el("a", null, raw);
      a.href = href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      parent.appendChild(a);
      last = m.index + raw.length;
      URL_RE.lastIndex = last;
    }
    if (last < text.length) parent.appendChild(d.createTextNode(text.slice(last)));
  }

  // t(id, {x: …}) in the embed's language: its data-lang, else the browser's (the loader decides; a loader cached
  // from before it did leaves inst.lang unset).
  function words(lang) {
    var own = WORDS[lang] || {};
    return function (k, v) {
      var text = own[k] || WORDS.en[k];
      return v ? text.replace(/\{(\w+)\}/g, function (m, x) { return String(v[x]); }) : text;
    };
  }

  function shortTime(t, loc) {
    var o = { hour: "2-digit", minute: "2-digit" };
    if (t.toDateString() !== new Date().toDateString()) {
      o.day = "numeric";
      o.month = "short";
    }
    return t.toLocaleString(loc, o);
  }

  function stamp(box, ts, loc) {
    var t = new Date(ts);
    if (!ts || isNaN(t.getTime())) return;
    var e = el("time", null, shortTime(t, loc));
    e.setAttribute("datetime", String(ts));
    e.title = t.toLocaleString(loc);
    box.appendChild(e);
  }

  // Dark or light text on the site's color, whichever reads better.
  function ink(hex) {
    var n = parseInt(hex.slice(1, 7), 16);
    return ((n >> 16) * 299 + ((n >> 8) & 255) * 587 + (n & 255) * 114) / 1000 > 160 ? "#111827" : "#fff";
  }

  function avatar(person, cls) {
    var box = el("span", cls);
    box.setAttribute("aria-hidden", "true");
    var url = person && httpUrl(person.avatar_url);
    if (url) {
      var img = el("img");
      img.alt = "";
      img.src = url;
      box.appendChild(img);
    } else {
      box.textContent = ((person && person.name) || "?").trim().charAt(0) || "?";
    }
    return box;
  }

  // ------------------------------------------------------------------ one chat per embed

  function Chat(inst) {
    var site = inst.site;
    var base = inst.base;
    var S = store(site);
    var nav = w.navigator.language || "";
    var lang = /^fr/i.test(inst.lang || nav) ? "fr" : "en";
    var t = words(lang);
    // Dates in that language, in the browser's own variant of it when it has one (en-GB, fr-CA…).
    var loc = nav.slice(0, 2).toLowerCase() === lang ? nav : lang;
    inst.wrap.lang = lang;
    var st = {
      token: S.get("token"), siteInfo: null, conv: null, lastSeq: 0, ids: {}, seqs: {}, items: [],
      pending: {}, holds: {}, tries: {}, sent: {}, urls: {}, ws: null, authed: false, attempt: 0, timer: 0,
      authTimer: 0, booting: null, booted: false, reauth: 0, status: "", lastFrame: 0, lastPing: 0,
      lastTyping: 0, typingTimer: 0, unread: 0, file: null, fileUrl: null, b2b: null, b2bTimer: 0, beat: 0
    };

    // ---------------------------------------------------------------- the DOM
    var style = el("style");
    style.textContent = CSS;
    inst.root.insertBefore(style, inst.root.firstChild);

    var panel = el("section", "p");
    panel.hidden = true;
    panel.id = "lcw-panel";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", t("chat"));
    inst.btn.setAttribute("aria-controls", "lcw-panel");

    var header = el("header", "h");
    var av = el("span", "av");
    av.setAttribute("aria-hidden", "true");
    var titles = el("div", "tt");
    var title = el("h2", null, t("chat"));
    var sub = el("p", "sub");
    sub.hidden = true;
    var status = el("p", "st");
    status.setAttribute("role", "status");
    var dot = el("span", "dot");
    var statusText = el("span");
    status.appendChild(dot);
    status.appendChild(statusText);
    titles.appendChild(title);
    titles.appendChild(sub);
    titles.appendChild(status);
    var closeBtn = button("x", t("minimize"));
    closeBtn.appendChild(icon("close"));
    header.appendChild(av);
    header.appendChild(titles);
    header.appendChild(closeBtn);

    var log = el("div", "log");
    log.setAttribute("role", "log");
    log.setAttribute("aria-live", "polite");
    log.setAttribute("aria-label", t("messages"));
    log.tabIndex = 0;

    var typing = el("p", "ty");
    var bb = el("div", "bb");
    bb.hidden = true;
    var b2bBtn = button(null, null, t("b2b"));
    bb.appendChild(b2bBtn);
    // A closed conversation: the visitor may ask for its transcript by e-mail (CONTRACT section 7; never a note).
    var tr = el("form", "tr");
    tr.hidden = true;
    var trMail = el("input");
    trMail.type = "email";
    trMail.required = true;
    trMail.placeholder = t("trMail");
    trMail.setAttribute("aria-label", t("trLabel"));
    var trBtn = el("button", null, t("trSend"));
    tr.appendChild(trMail);
    tr.appendChild(trBtn);
    tr.addEventListener("submit", function (e) {
      e.preventDefault();
      trBtn.disabled = true;
      api("POST", "/api/widget/transcript", { email: trMail.value }).then(function (r) {
        trBtn.textContent = t(r.status === 202 ? "trSent" : r.status === 429 ? "trMany" : "trFail");
      }, function () { trBtn.textContent = t("trFail"); }).then(function () { trBtn.disabled = false; });
    });

    var preview = el("div", "pv");
    preview.hidden = true;
    var previewImg = el("img");
    previewImg.alt = t("preview");
    var previewSend = button("ok", null, t("sendImg"));
    var previewCancel = button("no", null, t("remove"));
    preview.appendChild(previewImg);
    preview.appendChild(previewSend);
    preview.appendChild(previewCancel);

    var errorBox = el("p", "er");
    errorBox.setAttribute("role", "alert");
    errorBox.hidden = true;
    var hint = el("p", "hint");
    hint.id = "lcw-hint";
    hint.hidden = true;

    var form = el("form", "f");
    form.noValidate = true;
    var label = el("label", "sr", t("yourMsg"));
    label.htmlFor = "lcw-input";
    var input = el("textarea");
    input.id = "lcw-input";
    input.rows = 1;
    input.placeholder = t("write");
    input.setAttribute("aria-describedby", "lcw-hint");
    var attach = button("ib", t("attach"));
    attach.appendChild(icon("clip"));
    var file = el("input");
    file.type = "file";
    file.accept = IMAGE_TYPES.join(",");
    file.hidden = true;
    file.tabIndex = -1;
    file.setAttribute("aria-label", t("imgToSend"));
    var send = el("button", "ib go");
    send.type = "submit";
    send.setAttribute("aria-label", t("send"));
    send.appendChild(icon("send"));
    form.appendChild(label);
    form.appendChild(attach);
    form.appendChild(file);
    form.appendChild(input);
    form.appendChild(send);

    // The rating an advisor's closing asks for (CONTRACT section 7): radio buttons in a fieldset, so arrows move
    // between the faces and a screen reader says "3 of 5, OK"; Enter or the button sends it.
    var rate = el("form", "rt");
    rate.hidden = true;
    rate.noValidate = true;
    var faces = el("fieldset");
    faces.appendChild(el("legend", null, t("rateQ")));
    var rates = t("rates").split("|");
    ["😞", "🙁", "😐", "🙂", "😀"].forEach(function (face, i) {
      var r = el("input", "sr");
      r.type = "radio";
      r.name = "score";
      r.value = i + 1;
      r.id = "lcw-r" + (i + 1);
      var l = el("label");
      var f = el("span", null, face);
      f.setAttribute("aria-hidden", "true");
      l.appendChild(f);
      l.appendChild(el("span", "sr", t("rateOf", { n: i + 1, word: rates[i] })));
      l.htmlFor = r.id;
      l.title = rates[i];
      faces.appendChild(r);
      faces.appendChild(l);
    });
    var comment = el("textarea");
    comment.rows = 2;
    comment.maxLength = 1000;
    comment.placeholder = t("comment");
    comment.setAttribute("aria-label", t("commentLbl"));
    var rateSend = el("button", "ok", t("rateSend"));
    rateSend.type = "submit";
    var thanks = el("p");
    thanks.setAttribute("role", "status");
    [faces, comment, rateSend].forEach(function (n) { rate.appendChild(n); });

    [header, log, typing, bb, rate, thanks, tr, preview, errorBox, hint, form].forEach(function (n) {
      panel.appendChild(n);
    });
    thanks.className = "rt";
    thanks.hidden = true;
    inst.wrap.appendChild(panel);

    // ---------------------------------------------------------------- visible state

    function setStatus(s) {
      if (st.status === s) return;
      st.status = s;
      panel.setAttribute("data-s", s);
      statusText.textContent = t(s);
      b2bBtn.disabled = s !== "online" || !!st.b2b;
      var note = t(s === "online" ? "sending" : "later");
      Object.keys(st.pending).forEach(function (cid) {
        var n = st.pending[cid].querySelector(".nt");
        if (n && !st.pending[cid].classList.contains("fail") &&
            !st.pending[cid].classList.contains("img")) n.textContent = note;
      });
      if (s === "unavailable" && !st.booted) {
        showError(t("noStart"), t("again"), function () { clearError(); boot(); });
        st.bootErr = true;
      }
    }

    function showError(text, action, onAction) {
      errorBox.textContent = text;
      if (action) {
        var b = button(null, null, action);
        b.addEventListener("click", onAction);
        errorBox.appendChild(b);
      }
      errorBox.hidden = false;
      st.bootErr = false;
    }

    // A boot clears only its own error: a refused file shown while history loads must stay in view.
    function clearError(bootOnly) {
      if (bootOnly && !st.bootErr) return;
      errorBox.hidden = true;
      errorBox.textContent = "";
    }

    function applySite(info) {
      if (!info || typeof info !== "object") return;
      st.siteInfo = info;
      var name = typeof info.name === "string" && info.name ? info.name : t("chat");
      title.textContent = name;
      panel.setAttribute("aria-label", t("chatWith", { name: name }));
      if (typeof info.color === "string" && /^#[0-9a-fA-F]{6}$/.test(info.color)) {
        inst.wrap.style.setProperty("--c", info.color);
        inst.wrap.style.setProperty("--t", ink(info.color));
        S.set("color", info.color);
      }
      header.replaceChild(avatar(st.conv && st.conv.advisor ? st.conv.advisor : { name: name }, "av"), header.firstChild);
    }

    function applyConv(c) {
      if (!c || typeof c !== "object") return;
      st.conv = c;
      var adv = c.advisor && typeof c.advisor === "object" ? c.advisor : null;
      var siteName = (st.siteInfo && st.siteInfo.name) || t("chat");
      header.replaceChild(avatar(adv || { name: siteName }, "av"), header.firstChild);
      var text = adv && adv.name ? String(adv.name) :
        c.status === "live" ? t("waiting") : c.status === "closed" ? t("closed") : "";
      sub.textContent = text;
      sub.hidden = !text;
      var back = c.back_to_bot && typeof c.back_to_bot === "object" ? c.back_to_bot : null;
      var hadFocus = inst.root.activeElement === b2bBtn;
      bb.hidden = !back;
      tr.hidden = c.status !== "closed";
      b2bBtn.textContent = (back && back.label) || t("b2b"); // the flow's label, as the flow wrote it
      if (st.b2b) {
        st.b2b = null;
        clearTimeout(st.b2bTimer);
      }
      b2bBtn.disabled = st.status !== "online";
      if (hadFocus && !back) input.focus();
      rate.hidden = c.rating !== "asked";
      if (c.status !== "closed") thanks.hidden = true;
    }

    rate.addEventListener("submit", function (e) {
      e.preventDefault();
      var picked = rate.querySelector("input:checked");
      if (!picked) {
        showError(t("rateFirst"));
        faces.querySelector("input").focus();
        return;
      }
      clearError();
      rateSend.disabled = true;
      api("POST", "/api/widget/rating", { score: +picked.value, comment: comment.value }).then(function (r) {
        rateSend.disabled = false;
        if (r.status === 201 || r.status === 409) {
          rate.hidden = true;
          thanks.textContent = t(r.status === 201 ? "thanks" : "rated");
          thanks.hidden = false;
          input.focus();
        } else {
          showError(t("rateFail"), t("again"), function () { clearError(); rateSend.click(); });
        }
      }, function () {
        rateSend.disabled = false;
        showError(t("rateNet"));
      });
    });

    function showTyping(name) {
      typing.textContent = t("typing", { name: name ? String(name) : t("someone") });
      clearTimeout(st.typingTimer);
      st.typingTimer = setTimeout(hideTyping, SHOW_TYPING_MS);
    }

    function hideTyping() {
      clearTimeout(st.typingTimer);
      typing.textContent = "";
    }

    function bumpUnread() {
      st.unread++;
      inst.badge.textContent = st.unread > 9 ? "9+" : String(st.unread);
      inst.badge.hidden = false;
      inst.btn.setAttribute("aria-label", t(st.unread > 1 ? "unreadN" : "unread1", { n: st.unread }));
    }

    function nearBottom() {
      return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    }

    function toBottom() {
      log.scrollTop = log.scrollHeight;
      st.pinned = true;
    }
    // The log follows its end while images load (an image's room is reserved when the server gave its size).
    log.addEventListener("scroll", function () { st.pinned = nearBottom(); }, { passive: true });
    log.addEventListener("load", function (e) { if (e.target.tagName === "IMG" && st.pinned) toBottom(); }, true);

    // ---------------------------------------------------------------- the timeline

    function renderMessage(m) {
      var text = m.text == null ? "" : String(m.text);
      if (m.kind === "event" || m.sender === "system") {
        var ev = el("div", "m ev");
        ev.appendChild(el("span", null, text));
        stamp(ev, m.created_at, loc);
        return ev;
      }
      var me = m.sender === "visitor";
      var adv = m.sender === "advisor";
      var who = me ? t("you") : adv ? (m.advisor && m.advisor.name) || t("advisor") : t("bot");
      var box = el("div", "m " + (me ? "me" : adv ? "adv" : "bot"));
      if (me) {
        box.appendChild(el("span", "sr", t("youSaid")));
      } else {
        var head = el("div", "who");
        if (adv) head.appendChild(avatar(m.advisor, "av s"));
        head.appendChild(el("span", null, String(who)));
        head.appendChild(el("span", "sr", t("said")));
        box.appendChild(head);
      }
      var bubble = el("div", "b");
      var url = m.kind === "image" ? httpUrl(m.image_url) : null;
      if (url) {
        var a = el("a");
        a.href = url;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        var img = el("img");
        var w = +m.width, h = +m.height;
        if (w > 0 && h > 0) {
          var k = Math.min(1, 220 / w, 220 / h); // the CSS's 220 px box
          img.width = Math.round(w * k);
          img.height = Math.round(h * k);
        }
        img.src = url;
        img.alt = me ? t("imgSent") : t("imgFrom", { name: who });
        a.appendChild(img);
        bubble.appendChild(a);
        if (text) bubble.appendChild(el("br"));
      }
      richText(bubble, text);
      box.appendChild(bubble);
      if (Array.isArray(m.buttons) && m.buttons.length) {
        var group = el("div", "ch");
        group.setAttribute("role", "group");
        group.setAttribute("aria-label", t("choices"));
        m.buttons.forEach(function (choice) {
          if (!choice || choice.id == null) return;
          var b = button(null, null, choice.label == null ? "" : String(choice.label));
          b.addEventListener("click", function () { press(choice); });
          group.appendChild(b);
        });
        box.appendChild(group);
      }
      stamp(box, m.created_at, loc);
      return box;
    }

    // A visible item from the history or the socket; the same item twice (by id or seq) is shown once.
    function add(m, fromHistory) {
      if (!m || typeof m !== "object" || m.kind === "note") return;
      if ((m.id != null && st.ids[m.id]) || (m.seq != null && st.seqs[m.seq])) {
        if (m.client_id) acked(m.client_id);
        return;
      }
      if (m.id != null) st.ids[m.id] = 1;
      if (m.seq != null) st.seqs[m.seq] = 1;
      var seq = Number(m.seq) || 0;
      if (seq > st.lastSeq) st.lastSeq = seq;
      var stick = st.pinned || nearBottom() || m.sender === "visitor";
      if (m.client_id) acked(m.client_id);
      var node = renderMessage(m);
      var i = st.items.length;
      while (i > 0 && (Number(st.items[i - 1].m.seq) || 0) > seq) i--;
      var before = i < st.items.length ? st.items[i].node : log.querySelector(".pend,.fail");
      log.insertBefore(node, before || null);
      st.items.splice(i, 0, { m: m, node: node });
      if (m.sender === "advisor") hideTyping();
      if (!fromHistory && m.sender !== "visitor" && !inst.open) bumpUnread();
      refreshPrompt();
      if (stick) toBottom();
    }

    // Only the latest bot question is answerable: its buttons show and its input type sets the hint. A text
    // or a button press of the visitor answers it (an image does not: the bot still waits for its answer).
    function refreshPrompt() {
      var active = null;
      if (!log.querySelector(".pend:not(.img)")) {
        for (var i = st.items.length - 1; i >= 0; i--) {
          var m = st.items[i].m;
          if (m.sender === "visitor" && m.kind !== "image") break;
          if ((Array.isArray(m.buttons) && m.buttons.length) || (m.input && m.sender === "bot")) {
            active = m;
            break;
          }
        }
      }
      st.items.forEach(function (it) {
        var group = it.node.querySelector(".ch");
        if (group) group.hidden = it.m !== active;
      });
      var type = active && active.input && active.input.type;
      input.setAttribute("inputmode", type === "email" ? "email" : type === "number" ? "decimal" : "text");
      input.setAttribute("autocomplete", type === "email" ? "email" : "off");
      input.placeholder = t(type === "email" ? "mailPh" : type === "number" ? "numPh" : "write");
      hint.textContent = type === "email" ? t("mailHint") : type === "number" ? t("numHint") : "";
      hint.hidden = !hint.textContent;
    }

    // ---------------------------------------------------------------- the outbox

    function outbox() {
      var o = S.get("outbox");
      return Array.isArray(o) ? o.filter(function (x) { return x && x.client_id; }) : [];
    }

    function saveOutbox(o) {
      S.set("outbox", o.length ? o : null);
    }

    function findOut(cid) {
      return outbox().filter(function (x) { return x.client_id === cid; })[0] || null;
    }

    function pendingNode(item, note) {
      var box = el("div", "m me pend");
      box.appendChild(el("span", "sr", t("youSaid")));
      var bubble = el("div", "b");
      richText(bubble, item.text);
      box.appendChild(bubble);
      box.appendChild(el("span", "nt", note || t(st.status === "online" ? "sending" : "later")));
      log.appendChild(box);
      st.pending[item.client_id] = box;
      toBottom();
      return box;
    }

    function queue(item) {
      item.client_id = newId();
      item.at = new Date().toISOString();
      var o = outbox();
      o.push(item);
      saveOutbox(o);
      pendingNode(item);
      refreshPrompt();
      transmit(item);
      if (!st.booted) boot();
    }

    function transmit(item) {
      if (!ready() || st.holds[item.client_id]) return;
      var frame = item.type === "button" ?
        { type: "button", client_id: item.client_id, button: item.button } :
        { type: "message", client_id: item.client_id, text: item.text };
      st.ws.send(JSON.stringify(frame));
      st.sent[item.client_id] = Date.now();
    }

    // Everything not yet acknowledged goes (again): after each auth, and for sends left unanswered.
    function flush(all) {
      var now = Date.now();
      outbox().forEach(function (item) {
        if (all || !st.sent[item.client_id] || now - st.sent[item.client_id] > RESEND_MS) transmit(item);
      });
    }

    function acked(cid) {
      var o = outbox();
      var rest = o.filter(function (x) { return x.client_id !== cid; });
      if (rest.length !== o.length) saveOutbox(rest);
      var node = st.pending[cid];
      if (node) node.remove();
      delete st.pending[cid];
      clearTimeout(st.holds[cid]);
      delete st.holds[cid];
      delete st.sent[cid];
      delete st.tries[cid];
      if (st.urls[cid]) {
        URL.revokeObjectURL(st.urls[cid]);
        delete st.urls[cid];
      }
    }

    function failed(cid, why) {
      saveOutbox(outbox().filter(function (x) { return x.client_id !== cid; }));
      clearTimeout(st.holds[cid]);
      delete st.holds[cid];
      var node = st.pending[cid];
      delete st.pending[cid];
      if (node) {
        node.classList.remove("pend");
        node.classList.add("fail");
        node.querySelector(".nt").textContent = t("notSent", { why: why });
      } else {
        showError(t("notSent", { why: why }));
      }
      refreshPrompt();
    }

    function hold(cid, ms) {
      clearTimeout(st.holds[cid]);
      st.holds[cid] = setTimeout(function () {
        delete st.holds[cid];
        var item = findOut(cid);
        if (item) transmit(item);
      }, ms + Math.random() * 500);
    }

    function onError(f) {
      var cid = typeof f.client_id === "string" ? f.client_id : null;
      if (cid && cid === st.b2b) {
        st.b2b = null;
        clearTimeout(st.b2bTimer);
        b2bBtn.disabled = st.status !== "online";
        showError(t(f.code === "rate_limited" ? "b2bWait" : "b2bFail"));
        return;
      }
      if (!cid || !findOut(cid)) return;
      if (f.code === "rate_limited") {
        hold(cid, Math.max(1, Number(f.retry_after) || 1) * 1000);
      } else if (f.code === "unavailable") {
        var n = (st.tries[cid] = (st.tries[cid] || 0) + 1);
        hold(cid, Math.min(30000, 1000 * Math.pow(2, n)));
      } else if (f.code === "too_long") {
        failed(cid, t("tooLong", { n: MAX_TEXT }));
      } else {
        failed(cid, t("refused"));
      }
    }

    // ---------------------------------------------------------------- REST

    function api(method, path, body, formData) {
      var headers = { "Accept-Language": lang }; // CORS-safelisted: no preflight of its own; server text follows
      if (st.token && path.indexOf("/api/widget/sessions") !== 0) headers.Authorization = "Bearer " + st.token;
      var opts = { method: method, headers: headers, credentials: "omit", mode: "cors", cache: "no-store" };
      if (formData) {
        opts.body = formData;
      } else if (body) {
        headers["Content-Type"] = "application/json";
        opts.body = JSON.stringify(body);
      }
      return w.fetch(base + path, opts).then(function (res) {
        return res.json().then(
          function (json) { return { status: res.status, body: json }; },
          function () { return { status: res.status, body: null }; }
        );
      });
    }

    function reset() {
      st.items.forEach(function (it) { it.node.remove(); });
      st.items = [];
      st.ids = {};
      st.seqs = {};
      st.lastSeq = 0;
      refreshPrompt();
    }

    function history(page) {
      return api("GET", "/api/widget/messages?after=" + st.lastSeq + "&limit=100").then(function (r) {
        if (r.status === 401) {
          var e = new Error("token refused");
          e.status = 401;
          throw e;
        }
        if (r.status !== 200 || !r.body || !Array.isArray(r.body.messages)) throw new Error("history " + r.status);
        var before = st.lastSeq;
        r.body.messages.forEach(function (m) { add(m, true); });
        if (r.body.messages.length && st.lastSeq > before && page < 50) return history(page + 1);
      });
    }

    // Session, history, then the socket. Called on open, on page load with a token, and after a 4401.
    function boot() {
      if (st.booting) return st.booting;
      clearError(true);
      setStatus("connecting");
      var body = { site: site, page: String(location.href) };
      if (st.token) body.token = st.token;
      st.booting = api("POST", "/api/widget/sessions", body)
        .then(function (r) {
          if ((r.status !== 200 && r.status !== 201) || !r.body || typeof r.body.token !== "string") {
            throw new Error("session " + r.status);
          }
          if (r.status === 201 && st.items.length) reset(); // the old token is gone: a new conversation
          st.token = r.body.token;
          S.set("token", st.token);
          applySite(r.body.site);
          applyConv(r.body.conversation);
          return history(0);
        })
        .then(function () {
          st.booted = true;
          st.reauth = 0;
          clearError(true);
          outbox().forEach(function (item) { if (!st.pending[item.client_id]) pendingNode(item); });
          refreshPrompt();
          toBottom();
          if (!st.beat) st.beat = setInterval(heartbeat, 5000);
          connect();
        })
        .catch(function (e) {
          st.booting = null;
          if (e && e.status === 401 && st.reauth++ < 2) {
            st.token = null;
            S.set("token", null);
            return boot();
          }
          setStatus(w.navigator.onLine === false ? "offline" : "unavailable");
        });
      return st.booting;
    }

    // ---------------------------------------------------------------- the socket

    function ready() {
      return !!(st.ws && st.authed && st.ws.readyState === 1);
    }

    function drop() {
      var ws = st.ws;
      st.ws = null;
      st.authed = false;
      clearTimeout(st.authTimer);
      if (ws) {
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        try {
          ws.close();
        } catch (e) {
          // already closed
        }
      }
    }

    function backoff() {
      var cap = Math.min(30000, 1000 * Math.pow(2, st.attempt++));
      return cap / 2 + Math.random() * cap / 2; // exponential, with jitter
    }

    function schedule(then) {
      clearTimeout(st.timer);
      if (w.navigator.onLine === false) return setStatus("offline");
      setStatus("reconnecting");
      st.timer = setTimeout(then || connect, backoff());
    }

    function connect() {
      clearTimeout(st.timer);
      if (st.ws || !st.token || !st.booted) return;
      if (w.navigator.onLine === false) return setStatus("offline");
      if (st.status !== "reconnecting") setStatus("connecting");
      var ws;
      try {
        ws = new w.WebSocket(base.replace(/^http/, "ws") + "/ws/widget/?site=" + encodeURIComponent(site));
      } catch (e) {
        return schedule();
      }
      st.ws = ws;
      st.authed = false;
      ws.onopen = function () {
        st.lastFrame = Date.now();
        // The token travels in the first frame, never in the URL.
        ws.send(JSON.stringify({ type: "auth", token: st.token, after: st.lastSeq }));
        st.authTimer = setTimeout(function () {
          if (st.ws === ws && !st.authed) {
            drop();
            schedule();
          }
        }, 10000);
      };
      ws.onmessage = function (e) {
        if (st.ws !== ws) return;
        st.lastFrame = Date.now();
        var f;
        try {
          f = JSON.parse(e.data);
        } catch (x) {
          return;
        }
        if (f && typeof f === "object") onFrame(f);
      };
      ws.onclose = function (e) {
        if (st.ws !== ws) return;
        st.ws = null;
        st.authed = false;
        clearTimeout(st.authTimer);
        if (e.code === 4401) {
          // The token was refused: start the session again (it may come back as a new visitor).
          st.booted = false;
          st.booting = null;
          return schedule(boot);
        }
        schedule();
      };
      ws.onerror = function () {
        // a close event follows
      };
    }

    function onFrame(f) {
      if (f.type === "conversation") {
        applyConv(f.conversation);
        if (!st.authed) {
          st.authed = true;
          st.attempt = 0;
          clearTimeout(st.authTimer);
          setStatus("online");
          flush(true);
        }
      } else if (f.type === "message") {
        add(f.message, false);
      } else if (f.type === "typing") {
        showTyping(f.name);
      } else if (f.type === "error") {
        onError(f);
      }
    }

    function heartbeat() {
      if (!ready()) return;
      var now = Date.now();
      if (now - st.lastFrame > DEAD_MS) {
        drop();
        return schedule();
      }
      if (now - st.lastPing > PING_MS) {
        st.lastPing = now;
        st.ws.send(JSON.stringify({ type: "ping" }));
      }
      flush(false);
    }

    w.addEventListener("offline", function () {
      drop();
      clearTimeout(st.timer);
      if (st.booted || st.booting) setStatus("offline");
    });
    w.addEventListener("online", function () {
      st.attempt = 0;
      if (st.booted) connect();
      else if (inst.open || st.token || outbox().length) boot();
    });

    // ---------------------------------------------------------------- images

    function clearPreview() {
      if (st.fileUrl) URL.revokeObjectURL(st.fileUrl);
      st.file = st.fileUrl = null;
      previewImg.removeAttribute("src");
      preview.hidden = true;
      file.value = "";
    }

    // What the file is, from its first bytes (JPEG, PNG, GIF, WebP), not from its name: a text file renamed .png
    // would preview as a broken image, then fail to send.
    function pick(f) {
      if (!f) return;
      clearError();
      file.value = "";
      var bad = t("badFile");
      if (f.size > MAX_IMAGE) return showError(bad);
      f.slice(0, 12).arrayBuffer().then(function (buf) {
        var head = String.fromCharCode.apply(null, new Uint8Array(buf));
        if (!/^(\xff\xd8\xff|\x89PNG\r\n\x1a\n|GIF8[79]a|RIFF[^]{4}WEBP)/.test(head)) return showError(bad);
        clearPreview();
        st.file = f;
        st.fileUrl = URL.createObjectURL(f);
        previewImg.src = st.fileUrl;
        preview.hidden = false;
        previewSend.focus();
      }, function () { showError(bad); });
    }

    function upload(f, cid, node) {
      if (!st.booted) return showError(t("notYet"));
      cid = cid || newId();
      if (!node) {
        st.urls[cid] = URL.createObjectURL(f);
        node = el("div", "m me pend img");
        node.appendChild(el("span", "sr", t("youImg")));
        var bubble = el("div", "b");
        var img = el("img");
        img.src = st.urls[cid];
        img.alt = t("imgSending");
        bubble.appendChild(img);
        node.appendChild(bubble);
        node.appendChild(el("span", "nt"));
        log.appendChild(node);
      }
      var note = node.querySelector(".nt");
      note.textContent = t("sending");
      node.classList.remove("fail");
      node.classList.add("pend");
      st.pending[cid] = node;
      toBottom();
      var data = new FormData();
      data.append("image", f, f.name || "image");
      data.append("client_id", cid);
      function retry(why) {
        node.classList.remove("pend");
        node.classList.add("fail");
        note.textContent = t("notSent", { why: why });
        var again = button(null, null, t("retry"));
        again.addEventListener("click", function () { upload(f, cid, node); });
        note.appendChild(again);
      }
      api("POST", "/api/widget/images", null, data).then(function (r) {
        if ((r.status === 201 || r.status === 200) && r.body && r.body.message) {
          add(r.body.message, false);
          acked(cid);
        } else if (r.status === 413 || r.status === 415) {
          delete st.pending[cid];
          node.classList.remove("pend");
          node.classList.add("fail");
          note.textContent = t(r.status === 413 ? "imgBig" : "imgType");
        } else {
          // 429: an upload is one of the token's sends, under the same limit as messages
          retry(t(r.status === 429 ? "busy" : "serverNo"));
        }
      }, function () {
        retry(t("noNet"));
      });
    }

    // ---------------------------------------------------------------- what the visitor does

    function submit() {
      var text = input.value.trim();
      if (!text) {
        if (st.file) upload(st.file);
        return;
      }
      if (text.length > MAX_TEXT) {
        return showError(t("msgLong", { max: MAX_TEXT, n: text.length }));
      }
      clearError();
      input.value = "";
      autosize();
      queue({ type: "message", text: text });
      input.focus();
    }

    function press(choice) {
      queue({ type: "button", button: choice.id, text: choice.label == null ? "" : String(choice.label) });
      input.focus();
    }

    // Empty, the box takes its natural one-line height (the CSS's), never a measured one a pixel off.
    function autosize() {
      input.style.height = "";
      if (input.value) input.style.height = Math.min(input.scrollHeight + 2, 120) + "px";
    }

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      submit();
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submit();
      }
    });
    input.addEventListener("input", function () {
      autosize();
      var now = Date.now();
      if (input.value.trim() && ready() && now - st.lastTyping >= TYPING_MS) {
        st.lastTyping = now;
        st.ws.send(JSON.stringify({ type: "typing" }));
      }
    });
    attach.addEventListener("click", function () { file.click(); });
    file.addEventListener("change", function () { pick(file.files && file.files[0]); });
    previewSend.addEventListener("click", function () {
      var f = st.file;
      clearPreview();
      input.focus();
      if (f) upload(f);
    });
    previewCancel.addEventListener("click", function () {
      clearPreview();
      attach.focus();
    });
    b2bBtn.addEventListener("click", function () {
      if (!ready() || st.b2b) return;
      st.b2b = newId();
      b2bBtn.disabled = true;
      st.ws.send(JSON.stringify({ type: "back_to_bot", client_id: st.b2b }));
      st.b2bTimer = setTimeout(function () {
        st.b2b = null;
        b2bBtn.disabled = st.status !== "online";
      }, 10000);
    });
    closeBtn.addEventListener("click", function () { close(true); });
    panel.addEventListener("keydown", function (e) {
      if (e.key === "Escape") {
        e.stopPropagation();
        close(true);
      }
    });

    // The visitor opened it: focus goes to the composer. Reopened on a new page of the site: the host page
    // keeps its focus.
    function open(restoring) {
      inst.open = inst.want = true;
      inst.restore = false;
      panel.hidden = false;
      inst.wrap.classList.add("open");
      inst.btn.setAttribute("aria-expanded", "true");
      inst.btn.setAttribute("aria-label", t("close"));
      inst.btn.removeAttribute("aria-busy");
      inst.badge.hidden = true;
      st.unread = 0;
      S.set("open", 1);
      if (!st.booted) boot();
      toBottom();
      if (!restoring) input.focus();
    }

    function close(focusLauncher) {
      inst.open = inst.want = false;
      panel.hidden = true;
      inst.wrap.classList.remove("open");
      inst.btn.setAttribute("aria-expanded", "false");
      inst.btn.setAttribute("aria-label", t("open"));
      inst.btn.removeAttribute("aria-busy");
      S.set("open", null);
      if (focusLauncher) inst.btn.focus();
    }

    inst.toggle = function () {
      if (inst.open) close(true);
      else open(false);
    };

    refreshPrompt();
    if (inst.want) open(inst.restore);
    else if (st.token || outbox().length) boot(); // a returning visitor: history and live messages, panel closed
  }

  ns.mount = function (inst) {
    if (inst && inst.root && !inst.chat) inst.chat = new Chat(inst);
  };
  ns.q.forEach(ns.mount);
})(window, document);
