// The advisor inbox: boots from /api/inbox/me, keeps the list, the open conversation and the badge live
// from /ws/inbox/, and catches up by seq after every reconnect.

import {AccessWatch, accessMessage, followAccess} from "./access.js";
import {Alerts, isNewEscalation, ringsOnChange, ringsOnMessage} from "./alerts.js";
import {advisorList, api, setUnauthenticatedHandler} from "./api.js";
import {Composer, Outbox} from "./composer.js";
import {clear, h, image} from "./dom.js";
import {hue, initials} from "./format.js";
import {format, gettext, ngettext} from "./i18n.js";
import {watchLayout} from "./layout.js";
import {ConversationList} from "./list.js";
import {InboxSocket} from "./socket.js";
import {statusChooser} from "./status.js";
import {siteColor, store} from "./store.js";
import {ConversationPane} from "./thread.js";
import {
  CannedPicker, LabelMenu, SearchBox, SettingsDialog, bindLabelFilter, canned, isTyping, labels, transcriptLinks,
} from "./productivity.js";

const $ = (id) => document.getElementById(id);
const LOGIN_URL = "/accounts/login/?next=/inbox/";

// ------------------------------------------------------------------ small UI helpers

function toast(text, kind = "info", ms = 4200) {
  const el = h("div", {class: `toast toast--${kind}`, role: kind === "error" ? "alert" : null}, text);
  $("toasts").append(el);
  setTimeout(() => el.classList.add("is-leaving"), ms);
  setTimeout(() => el.remove(), ms + 400);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isEditable(el) {
  return !!el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
}

// The fragment names the open conversation: the login page carries it through (static/inbox/login.js).
setUnauthenticatedHandler(() => location.assign(LOGIN_URL + location.hash));

// ------------------------------------------------------------------ counts, badge and title

const countsByScope = new Map(); // "" (all my sites) or a site key -> counts

function onCounts(counts, site) {
  countsByScope.set(site || "", counts);
  renderCounts();
}

function setBadge(el, n) {
  el.hidden = !n;
  el.textContent = n > 99 ? "99+" : String(n || "");
  if (n) el.setAttribute("aria-label", format(ngettext("%(count)s to process", "%(count)s to process", n), {count: n}));
}

function renderCounts() {
  const all = countsByScope.get("");
  const here = countsByScope.get(list.view.site || "") || all;
  const toProcess = all ? all.to_process || 0 : 0;
  document.title = toProcess ? format(gettext("(%(count)s) Inbox"), {count: toProcess}) : gettext("Inbox");
  setBadge($("to-process"), toProcess);
  setBadge($("rail-badge"), toProcess);
  if (here) {
    setBadge(document.querySelector('[data-badge="to_process"]'), here.to_process || 0);
    for (const el of document.querySelectorAll("[data-count]")) {
      const n = here[el.dataset.count];
      el.textContent = n === undefined || n === null ? "" : String(n);
    }
    const labels = {all: gettext("All"), unassigned: gettext("Unassigned"), unread: gettext("Unread"),
                    mine: gettext("Mine")};
    for (const option of $("filter").options) {
      if (!labels[option.value]) continue;
      const n = option.value === "all" ? here.live : here[option.value];
      option.textContent = list.view.box === "live" && n !== undefined && n !== null ?
        `${labels[option.value]} (${n})` : labels[option.value];
    }
  }
  for (const tab of document.querySelectorAll("#site-tabs [role=tab]")) {
    const counts = countsByScope.get(tab.dataset.site || "");
    setBadge(tab.querySelector(".badge"), counts ? counts.to_process || 0 : 0);
  }
}

let countsTimer = null;
let countsRunning = false;
let countsAgain = false;
let countsLastRun = 0;
const COUNTS_MIN_INTERVAL_MS = 1000; // a burst of frames costs one refresh a second, not one per frame

function scheduleCounts(delay = 250) {
  if (countsTimer) return; // already coming
  const wait = Math.max(delay, countsLastRun + COUNTS_MIN_INTERVAL_MS - Date.now());
  countsTimer = setTimeout(() => {
    countsTimer = null;
    refreshCounts();
  }, wait);
}

async function refreshCounts() {
  if (countsRunning) {
    countsAgain = true;
    return;
  }
  countsRunning = true;
  countsLastRun = Date.now();
  try {
    const scopes = [""];
    if ((store.me?.sites || []).length > 1) scopes.push(...store.me.sites.map((s) => s.key));
    await Promise.all(scopes.map(async (site) => {
      const data = await api.conversations({box: "live", limit: 1, site: site || null});
      if (data && data.counts) countsByScope.set(site, data.counts);
    }));
    renderCounts();
  } catch {
    /* refreshed again on the next frame or reconnect */
  } finally {
    countsRunning = false;
    if (countsAgain) {
      countsAgain = false;
      scheduleCounts();
    }
  }
}

// ------------------------------------------------------------------ the parts of the page

const outbox = new Outbox({
  onChange: (conversationId) => {
    if (pane.id === conversationId) pane.renderPending();
  },
  onStored: (message) => applyMessage(message, {fromSocket: false}),
  onRefused: (entry, error) => {
    if (error.code === "closed") toast(gettext("This conversation is closed: reopen it to reply."), "error");
  },
});

const socket = new InboxSocket({
  onFrame: (frame) => onFrame(frame),
  onOpen: ({reconnected}) => onSocketOpen(reconnected),
  onDown: ({retryInMs}) => onSocketDown(retryInMs),
  onAuthLost: () => onAuthLost(),
});

const list = new ConversationList({
  list: $("conversation-list"),
  scroll: $("list-scroll"),
  sentinel: $("list-sentinel"),
  status: $("list-status"),
  onOpen: (id) => openConversation(id),
  onCounts,
  multiSite: () => (store.me?.sites || []).length > 1,
});

const composer = new Composer({
  els: {
    form: $("composer"), text: $("composer-text"), label: $("composer-label"), noteToggle: $("note-toggle"),
    attachBtn: $("attach-btn"), attachInput: $("attach-input"), attachment: $("attachment"),
    attachImg: $("attachment-img"), attachName: $("attachment-name"), attachRemove: $("attachment-remove"),
    send: $("send-btn"), hint: $("composer-hint"),
  },
  outbox,
  socket,
  toast,
  onEscape: () => list.focusRow(pane.id),
});

const pane = new ConversationPane({
  els: {
    empty: $("thread-empty"), view: $("thread-view"), avatar: $("thread-avatar"), name: $("thread-name"),
    sub: $("thread-sub"), take: $("act-take"), assign: $("act-assign"), assignMenu: $("assign-menu"),
    close: $("act-close"), reopen: $("act-reopen"), assignee: $("thread-assignee"),
    panelToggle: $("panel-toggle"), panel: $("side-panel"), scroll: $("timeline-scroll"), top: $("timeline-top"),
    start: $("timeline-start"), timeline: $("timeline"), pending: $("timeline-pending"), newBelow: $("new-below"),
    typing: $("typing"), typingText: $("typing-text"), leadBar: $("lead-bar"), labels: $("thread-labels"),
  },
  list,
  outbox,
  composer,
  toast,
  onChange: (conv) => applyConversation(conv, {fromSocket: false}),
  onClosed: () => history.replaceState(null, "", location.pathname + location.search),
});

watchLayout({pane, list, view: $("thread-view"), back: $("thread-back")});

const alerts = new Alerts({
  soundUrl: document.body.dataset.soundUrl,
  iconUrl: document.body.dataset.iconUrl,
  banner: $("notify-banner"),
  enableButton: $("notify-enable"),
  dismissButton: $("notify-dismiss"),
  soundButton: $("sound-toggle"),
  onSoundChange: async (on) => {
    try {
      const me = await api.updateMe({sound: on});
      if (me && typeof me.sound === "boolean") {
        store.me = {...store.me, ...me};
        alerts.setSound(me.sound);
      }
      toast(on ? gettext("Sound on for new visitor messages.") : gettext("Sound muted."));
    } catch {
      alerts.setSound(!on);
      toast(gettext("Could not save the sound setting."), "error");
    }
  },
  onOpen: (id) => openConversation(id),
});

// ------------------------------------------------------------------ productivity (issue 16)

new CannedPicker({form: $("composer"), textarea: $("composer-text"), list: $("canned-list"),
                  missing: $("canned-missing"), getConv: () => pane.conv});
new SettingsDialog({dialog: $("settings-dialog"), openButton: $("settings-open"), toast});
const labelMenu = new LabelMenu({button: $("act-labels"), menu: $("labels-menu"), getConv: () => pane.conv,
                                 onChange: (conv) => applyConversation(conv, {fromSocket: false}), toast});
bindLabelFilter($("label-filter"), (name) => list.setView({label: name || null}).catch(() => {}));
const search = new SearchBox({
  input: $("search"), results: $("search-results"), status: $("search-status"),
  hide: [$("conversation-list"), $("list-sentinel"), $("list-status")],
  onOpen: (id, seq) => openConversationAt(id, seq), getSite: () => list.view.site,
});
$("act-transcript").addEventListener("click", () => {
  const menu = $("transcript-menu");
  if (menu.hidden && pane.id) transcriptLinks(menu, pane.id);
  menu.hidden = !menu.hidden;
  $("act-transcript").setAttribute("aria-expanded", String(!menu.hidden));
  menu.querySelector("a")?.focus();
});
$("transcript-menu").addEventListener("click", () => {
  $("transcript-menu").hidden = true;
  $("act-transcript").setAttribute("aria-expanded", "false");
});

function openConversationAt(id, seq) {
  history.replaceState(null, "", `#conversation-${id}`);
  pane.openAt(id, seq);
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.altKey) return;
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
    event.preventDefault();
    search.focus();
    return;
  }
  if (event.ctrlKey || event.metaKey || isTyping(event.target) || document.querySelector("dialog[open]")) return;
  if (event.key === "/") {
    event.preventDefault();
    search.focus();
  } else if (event.key === "?") {
    event.preventDefault();
    $("shortcuts-dialog").showModal();
  }
});

// ------------------------------------------------------------------ opening conversations

function openConversation(id) {
  if (!id) return;
  history.replaceState(null, "", `#conversation-${id}`);
  pane.open(id);
}

function idFromHash() {
  const m = location.hash.match(/^#conversation-(\d+)$/);
  return m ? Number(m[1]) : null;
}

window.addEventListener("hashchange", () => {
  const id = idFromHash();
  if (id && id !== pane.id) pane.open(id);
});

// ------------------------------------------------------------------ applying what the server says

function applyConversation(conv, {fromSocket}) {
  const prev = store.conversations.get(conv.id);
  // Frames and REST answers can cross, and a resume can answer before an older live frame is read: a CONV
  // older than the one we hold (by `change`, which grows with every change of it) is not news.
  if (prev && typeof prev.change === "number" && typeof conv.change === "number" && conv.change < prev.change) return;
  let next = conv;
  // A REST answer and a frame can cross: keep the newest last item we saw.
  if (prev?.last_message && (!conv.last_message || conv.last_message.seq < prev.last_message.seq)) {
    next = {...conv, last_message: prev.last_message};
  }
  store.conversations.set(conv.id, next);
  const escalation = fromSocket && isNewEscalation(prev, next);
  if (escalation) alerts.notifyEscalation(next);
  // Given to me (routing, a colleague), heard from whichever answer brings it first: the thread's read of the
  // "joined" line can answer before the socket's frame. Not on a first load (nothing held before), and never for
  // my own take, assignment or reply (ringsOnChange).
  const toMe = !escalation && (fromSocket || prev !== undefined) && ringsOnChange(prev, next);
  if (toMe) alerts.notifyEscalation(next, {assigned: true});
  if (escalation || toMe) alerts.ding(next.id);
  list.upsert(next);
  pane.conversationChanged(next);
  scheduleCounts();
}

const seenMessages = new Set();

function firstSight(id) {
  if (seenMessages.has(id)) return false;
  seenMessages.add(id);
  if (seenMessages.size > 5000) seenMessages.delete(seenMessages.values().next().value);
  return true;
}

async function applyMessage(msg, {fromSocket}) {
  let conv = store.conversations.get(msg.conversation);
  if (!conv) {
    try {
      conv = await api.conversation(msg.conversation);
      store.conversations.set(conv.id, conv);
    } catch {
      pane.onMessage(msg);
      return;
    }
  }
  const fresh = firstSight(msg.id);
  const mine = !!msg.client_id && store.myClientIds.has(msg.client_id);
  conv = store.conversations.get(msg.conversation) || conv;
  const next = {...conv};
  if (!conv.last_message || msg.seq >= conv.last_message.seq) next.last_message = msg;
  if (next.status === "bot") {
    // The bot answers: nothing for an advisor to read or answer (the server's rule, Conversation.unanswered).
    next.unanswered = false;
    next.unread = false;
  } else {
    if (msg.kind !== "note" && msg.kind !== "event") {
      if (msg.sender === "visitor") next.unanswered = true;
      else if (msg.sender === "advisor") next.unanswered = false;
    }
    const viewing = pane.id === conv.id && document.visibilityState === "visible";
    if (fresh && !mine && !viewing) next.unread = true;
  }
  store.conversations.set(next.id, next);
  list.upsert(next);
  pane.onMessage(msg);
  pane.conversationChanged(next);
  if (fromSocket && fresh && ringsOnMessage(msg, next)) alerts.ding(next.id);
  scheduleCounts();
}

function onFrame(frame) {
  switch (frame.type) {
    case "conversation":
      if (frame.conversation && frame.conversation.id) applyConversation(frame.conversation, {fromSocket: true});
      break;
    case "message":
      if (frame.message && frame.message.conversation) applyMessage(frame.message, {fromSocket: true});
      break;
    case "access_changed":
      access.check().catch(() => {});
      break;
    case "resumed":
      // Every conversation changed since we asked (or since the socket saw events go missing) came before this.
      if (typeof frame.change === "number") resumePoint = Math.max(resumePoint ?? 0, frame.change);
      refreshCounts();
      break;
    case "typing":
      pane.showTyping(frame.conversation, frame.name);
      list.showTyping(frame.conversation);
      break;
    case "replying": // a colleague typing in a conversation (routing's collision detection)
      pane.showReplying(frame.conversation, frame.advisor);
      list.showReplying(frame.conversation, frame.advisor);
      break;
    case "presence": {
      const conv = store.conversations.get(frame.conversation);
      if (conv) {
        const next = {...conv, visitor: {...conv.visitor, online: !!frame.online}};
        store.conversations.set(next.id, next);
        list.upsert(next);
        pane.conversationChanged(next);
      }
      break;
    }
    default:
      break;
  }
}

// ------------------------------------------------------------------ connection state

let offlineTimer = null;

function setConn(state) {
  const el = $("conn");
  el.className = `conn is-${state}`;
  const label = {online: gettext("Connected"), connecting: gettext("Connecting"), offline: gettext("Offline")}[state];
  el.setAttribute("aria-label", label);
  el.title = label;
}

// ------------------------------------------------------------------ nothing missed (CONTRACT section 5)

// The `change` the server last said we are resumed to. Live frames do not move it: the channel layer may drop a
// frame whose change is below one that arrived, so only a `resumed` answer says everything before it came.
let resumePoint = null;

/** The newest `change` the page holds (its first load), for the first resume. */
function newestKnownChange() {
  let newest = null;
  for (const conv of store.conversations.values()) {
    if (typeof conv.change === "number" && (newest === null || conv.change > newest)) newest = conv.change;
  }
  return newest;
}

/** Ask for every conversation changed since we last knew; the answers update the list, counts and badge. */
function resume() {
  const since = resumePoint ?? newestKnownChange();
  if (since === null) {
    list.reload().catch(() => {}); // nothing loaded to resume from: load afresh
    refreshCounts();
    return;
  }
  socket.send({type: "resume", since});
}

function onSocketOpen(reconnected) {
  setConn("online");
  clearInterval(offlineTimer);
  $("offline").hidden = true;
  document.body.classList.remove("is-offline");
  Object.assign($("offline-retry"), {hidden: false, textContent: gettext("Retry now"),
                                     onclick: () => socket.reconnectNow()});
  outbox.wake();
  resume();
  if (reconnected) {
    if (pane.id) {
      api.conversation(pane.id).then((conv) => applyConversation(conv, {fromSocket: false})).catch(() => {});
      pane.catchUp();
    }
  }
}

function onSocketDown(retryInMs) {
  setConn("offline");
  document.body.classList.add("is-offline");
  $("offline").hidden = false;
  const update = () => {
    const left = Math.max(0, Math.ceil((socket.nextRetryAt - Date.now()) / 1000));
    $("offline-text").textContent = left > 0 ?
      format(gettext("Connection lost. Reconnecting in %(seconds)s s… Messages will catch up automatically."),
        {seconds: left}) :
      gettext("Connection lost. Reconnecting…");
  };
  update();
  clearInterval(offlineTimer);
  offlineTimer = setInterval(update, 1000);
}

// The server closed the socket 4401: signed out, or the license revoked (the access_changed frame came first).
// Only /api/inbox/me knows which; "signed out" is said only when it is so.
let authLostAt = 0;

async function onAuthLost() {
  setConn("connecting");
  const again = Date.now() - authLostAt < 10000;
  authLostAt = Date.now();
  const state = await access.check().catch(() => "unreachable");
  if (state === "ok" && !again) {
    socket.stopped = false;
    socket.reconnectNow();
    return;
  }
  setConn("offline");
  clearInterval(offlineTimer);
  $("offline").hidden = false;
  const retry = $("offline-retry");
  if (state === "signed_out") {
    $("offline-text").textContent = gettext("You were signed out.");
    retry.textContent = gettext("Sign in again");
    retry.onclick = () => location.assign(LOGIN_URL + location.hash);
  } else if (state === "not_advisor") {
    $("offline-text").textContent = gettext("This account is no longer an advisor of this inbox.");
    retry.hidden = true;
  } else {
    $("offline-text").textContent = gettext("The inbox stopped receiving updates.");
    retry.textContent = gettext("Reload");
    retry.onclick = () => location.reload();
  }
}

const access = new AccessWatch({
  apply: (change, me) => {
    renderMe(me);
    if (list.view.site && !(me.sites || []).some((s) => s.key === list.view.site)) list.view.site = null;
    renderTabs(me);
    document.querySelector('.box[data-box="chatbot"]').hidden = !me.sees_chatbot;
    if (!me.sees_chatbot && list.view.box === "chatbot") {
      list.view.box = "live";
      for (const box of document.querySelectorAll(".boxes .box")) {
        box.setAttribute("aria-pressed", String(box.dataset.box === "live"));
      }
    }
    composer.setLicensed(!!me.licensed);
    followAccess(change, {list, pane, countsByScope, refreshCounts});
    toast(accessMessage(change), "info", 12000);
  },
});

$("offline-retry").onclick = () => socket.reconnectNow();

// ------------------------------------------------------------------ sidebar controls

function renderMe(me) {
  const el = $("me-avatar");
  clear(el);
  const img = me.avatar_url ? image(me.avatar_url, {alt: ""}) : null;
  if (img) el.append(img);
  else el.textContent = initials(me.name || me.username);
  el.style.setProperty("--hue", String(hue(me.username)));
  el.title = format(me.licensed ? gettext("Signed in as %(name)s") : gettext("Signed in as %(name)s (default mode)"),
                    {name: me.name || me.username});
  document.body.classList.toggle("is-licensed", !!me.licensed);
}

function renderTabs(me) {
  const tabs = $("site-tabs");
  const sites = me.sites || [];
  tabs.hidden = sites.length < 2;
  if (sites.length < 2) return;
  const entries = [{key: "", name: gettext("All sites")}, ...sites];
  clear(tabs).append(...entries.map((site) => {
    const tab = h("button", {type: "button", role: "tab", class: "site-tab", dataset: {site: site.key},
                             "aria-selected": String((list.view.site || "") === site.key),
                             tabindex: (list.view.site || "") === site.key ? "0" : "-1"},
      site.key ? h("span", {class: "site-tab__dot", "aria-hidden": "true"}) : null,
      h("span", {class: "site-tab__name"}, site.name || site.key),
      h("span", {class: "badge badge--orange badge--small", hidden: true}));
    if (site.key) {
      const dot = tab.querySelector(".site-tab__dot");
      dot.style.setProperty("--hue", String(hue(site.key)));
      if (siteColor(site.key)) dot.style.setProperty("--site", siteColor(site.key));
    }
    return tab;
  }));
}

function selectTab(key) {
  for (const tab of document.querySelectorAll("#site-tabs [role=tab]")) {
    const on = (tab.dataset.site || "") === key;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
  }
  list.setView({site: key || null}).then(renderCounts).catch(() => {});
  renderCounts();
}

$("site-tabs").addEventListener("click", (event) => {
  const tab = event.target.closest("[role=tab]");
  if (tab) selectTab(tab.dataset.site || "");
});

$("site-tabs").addEventListener("keydown", (event) => {
  if (!["ArrowLeft", "ArrowRight", "Home", "End"].includes(event.key)) return;
  const tabs = Array.from(document.querySelectorAll("#site-tabs [role=tab]"));
  const index = tabs.indexOf(document.activeElement);
  let next = index;
  if (event.key === "ArrowRight") next = (index + 1) % tabs.length;
  if (event.key === "ArrowLeft") next = (index - 1 + tabs.length) % tabs.length;
  if (event.key === "Home") next = 0;
  if (event.key === "End") next = tabs.length - 1;
  event.preventDefault();
  tabs[next].focus();
  selectTab(tabs[next].dataset.site || "");
});

for (const button of document.querySelectorAll(".boxes .box")) {
  button.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".boxes .box")) {
      other.setAttribute("aria-pressed", String(other === button));
    }
    list.setView({box: button.dataset.box}).then(renderCounts).catch(() => {});
    renderCounts();
  });
}

$("filter").addEventListener("change", (event) => {
  const value = event.target.value;
  if (value.startsWith("advisor:")) list.setView({filter: "all", advisor: value.slice(8)}).catch(() => {});
  else list.setView({filter: value, advisor: null}).catch(() => {});
});

function renderAdvisorFilter() {
  const select = $("filter");
  select.querySelector("optgroup")?.remove();
  const others = store.advisors.filter((a) => a.username !== store.me.username);
  if (!others.length) return;
  const group = h("optgroup", {label: gettext("Assigned to")});
  for (const advisor of others) {
    group.append(h("option", {value: `advisor:${advisor.username}`}, advisor.name || advisor.username));
  }
  select.append(group);
}

// ------------------------------------------------------------------ keyboard

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  if (isEditable(event.target)) return;
  if (event.key === "j" || event.key === "k") {
    const id = list.neighbour(event.key === "j" ? 1 : -1);
    if (id) {
      event.preventDefault();
      list.focusRow(id);
      openConversation(id);
    }
  } else if (event.key === "r" && pane.id && !$("composer").hidden) {
    event.preventDefault();
    composer.focus();
  } else if (event.key === "Escape" && pane.id) {
    pane.closeAssignMenu(true);
  }
});

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") pane.markRead();
});
window.addEventListener("focus", () => pane.markRead());
setInterval(() => list.refreshTimes(), 30000);

// ------------------------------------------------------------------ boot

async function loadMe() {
  for (let attempt = 0; ; attempt++) {
    try {
      return await api.me();
    } catch (error) {
      if (error.status === 401) return null; // redirected to the login page
      $("list-status").textContent = gettext("The inbox is not reachable right now. Retrying…");
      await sleep(Math.min(30000, 1000 * 2 ** attempt));
    }
  }
}

async function boot() {
  const me = await loadMe();
  if (!me) return;
  store.me = me;
  renderMe(me);
  statusChooser($("me-status"), me, {onError: toast});
  renderTabs(me);
  document.querySelector('.box[data-box="chatbot"]').hidden = !me.sees_chatbot;
  composer.setLicensed(!!me.licensed);
  labels.load();
  canned.load().catch(() => {});
  alerts.setSound(me.sound !== false);
  alerts.showBannerIfUseful();
  setConn("connecting");
  try {
    await list.reload();
  } catch {
    /* the list says so; it reloads on reconnect */
  }
  // After the first load: the socket's first `resume` starts from what that load showed.
  socket.connect();
  refreshCounts();
  const id = idFromHash();
  if (id) openConversation(id);
  try {
    store.advisors = advisorList(await api.advisors());
    store.advisorsAt = Date.now();
    renderAdvisorFilter();
  } catch {
    /* the filter just has no per-advisor entries */
  }
  document.body.classList.add("is-ready");
}

// A test and debugging handle: read-only state plus a way to simulate a dropped connection.
window.inbox = {store, socket, list, pane, outbox, search, labelMenu, resumePoint: () => resumePoint};

boot();
