// The open conversation: header and actions, the timeline (paged back with `before`, caught up with
// `after`), the visitor's typing indicator and the side panel of variables.

import {assigningMyself} from "./alerts.js";
import {api, advisorList} from "./api.js";
import {ICONS, clear, h, icon, image, link, linkify} from "./dom.js";
import {anonymousName, clockTime, dayKey, dayLabel, hue, initials, longTime} from "./format.js";
import {format, gettext, ngettext} from "./i18n.js";
import {NARROW} from "./layout.js";
import {avatarFor, siteChip} from "./list.js";
import {labelChips} from "./productivity.js";
import {isMine, store} from "./store.js";

const STATUS_LABELS = {online: gettext("Online"), away: gettext("Away"), offline: gettext("Offline")};

const PAGE = 50;
const CATCH_UP_PAGE = 100;
const TYPING_SHOWN_MS = 4000;
const IMAGE_MAX_HEIGHT = 260; // .bubble__image's max-height
const PANEL_KEY = "inbox.panel.open";

function senderName(msg, conv) {
  if (msg.sender === "visitor") return conv?.visitor?.name || gettext("Visitor");
  if (msg.sender === "bot") return gettext("Chatbot");
  if (msg.sender === "advisor") return msg.advisor?.name || msg.author?.name || gettext("Advisor");
  return "";
}

export class ConversationPane {
  constructor({els, list, outbox, composer, toast, onChange, onClosed}) {
    this.els = els;
    this.list = list;
    this.outbox = outbox;
    this.composer = composer;
    this.toast = toast;
    this.onChange = onChange;
    this.onClosed = onClosed;
    this.id = null;
    this.generation = 0;
    this.reset();
    this.typingTimer = null;
    this.panelOpen = false;
    this.drawerOpen = false; // under 1200 px the details are a drawer, closed until asked for
    try {
      this.panelOpen = localStorage.getItem(PANEL_KEY) !== "0";
    } catch {
      this.panelOpen = true;
    }

    els.take.addEventListener("click", () => this.act("take"));
    els.close.addEventListener("click", () => this.act("close"));
    els.reopen.addEventListener("click", () => this.act("reopen"));
    els.assign.addEventListener("click", () => this.toggleAssignMenu());
    els.assignMenu.addEventListener("keydown", (event) => this.onMenuKey(event));
    document.addEventListener("click", (event) => {
      if (!els.assignMenu.hidden && !event.target.closest(".menu-wrap")) this.closeAssignMenu(false);
    });
    els.panelToggle.addEventListener("click", () => this.setPanel(els.panel.hidden));
    els.newBelow.addEventListener("click", () => this.scrollToBottom(true));
    els.scroll.addEventListener("scroll", () => {
      this.pinned = this.nearBottom();
      if (this.pinned) els.newBelow.hidden = true;
    }, {passive: true});
    // Images that load after the thread was drawn (a bot's, a pending preview, any without a known size) push the
    // end down: a thread that was at its end stays there.
    els.scroll.addEventListener("load", (event) => {
      if (event.target.tagName === "IMG" && this.pinned) this.scrollToBottom(false);
    }, true);
    this.topObserver = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadBefore();
    }, {root: els.scroll, rootMargin: "200px"});
    this.topObserver.observe(els.top);
  }

  reset() {
    this.messages = new Map(); // seq -> MSG
    this.renderedMax = 0;
    this.hasMoreBefore = false;
    this.loading = false;
    this.loadingBefore = false;
    this.readSeq = 0;
    this.reading = false;
    this.readAgain = false;
    this.catchingUp = null;
  }

  get conv() {
    return this.id ? store.conversations.get(this.id) : null;
  }

  get maxSeq() {
    let max = 0;
    for (const seq of this.messages.keys()) if (seq > max) max = seq;
    return max;
  }

  get minSeq() {
    let min = Infinity;
    for (const seq of this.messages.keys()) if (seq < min) min = seq;
    return min === Infinity ? 0 : min;
  }

  // ------------------------------------------------------------------ opening

  async open(id) {
    if (id === this.id) return;
    const generation = ++this.generation;
    this.closeAssignMenu(false);
    this.id = id;
    this.reset();
    this.loading = true;
    this.drawerOpen = false;
    this.list.setActive(id);
    this.els.empty.hidden = true;
    this.els.view.hidden = false;
    clear(this.els.timeline);
    this.els.start.hidden = true;
    this.els.newBelow.hidden = true;
    this.hideTyping();
    this.els.timeline.append(h("li", {class: "timeline__loading"}, gettext("Loading the conversation…")));
    const known = store.conversations.get(id);
    if (known) this.render(known);
    this.composer.setConversation(known || null);
    this.renderPending();

    let conv;
    try {
      conv = await api.conversation(id);
    } catch (error) {
      if (generation !== this.generation) return;
      this.loading = false;
      if (error.status === 404) {
        this.toast(gettext("This conversation is not available."), "error");
        this.closeView();
      } else {
        clear(this.els.timeline).append(h("li", {class: "timeline__loading"},
          gettext("Could not load this conversation. It will load again when the connection is back.")));
      }
      return;
    }
    if (generation !== this.generation) return;
    // Through the page's one door for a CONV (it keeps the newest by `change`): a frame that came while this
    // answer was on its way may be newer.
    this.onChange(conv);
    const newest = store.conversations.get(conv.id) || conv;
    this.render(newest);
    this.composer.setConversation(newest);

    try {
      const last = conv.last_message?.seq;
      const first = last ?
        await api.messages(id, {before: last + 1, limit: PAGE}) :
        await api.messages(id, {after: 0, limit: PAGE});
      if (generation !== this.generation) return;
      const items = first.messages || [];
      for (const m of items) this.messages.set(m.seq, m);
      this.hasMoreBefore = last ? items.length >= PAGE && this.minSeq > 1 : false;
      await this.fetchAfter(generation);
    } catch {
      if (generation !== this.generation) return;
      this.loading = false;
      clear(this.els.timeline).append(h("li", {class: "timeline__loading"},
        gettext("Could not load the messages. They will load again when the connection is back.")));
      return;
    }
    if (generation !== this.generation) return;
    this.loading = false;
    this.readSeq = conv.unread ? 0 : this.maxSeq;
    this.renderAll();
    this.scrollToBottom(false);
    this.markRead();
  }

  /** Load the open conversation afresh (its names, notes and variables follow a new license). */
  reload() {
    const id = this.id;
    this.id = null;
    return id ? this.open(id) : Promise.resolve();
  }

  /** Opens a conversation at one of its items (a search result), loading back to it and highlighting it. */
  async openAt(id, seq) {
    await this.open(id);
    if (this.id !== id || !seq) return;
    const generation = this.generation;
    for (let i = 0; i < 40 && !this.messages.has(seq) && this.hasMoreBefore && this.minSeq > seq; i++) {
      await this.loadBefore();
      if (generation !== this.generation) return;
    }
    const li = this.els.timeline.querySelector(`[data-seq="${Number(seq)}"]`);
    if (!li) return;
    for (const old of this.els.timeline.querySelectorAll(".is-found")) old.classList.remove("is-found");
    li.classList.add("is-found");
    li.scrollIntoView({block: "center"});
    setTimeout(() => li.classList.remove("is-found"), 6000);
  }

  closeView() {
    this.generation += 1;
    this.id = null;
    this.reset();
    this.list.setActive(null);
    this.els.view.hidden = true;
    this.els.empty.hidden = false;
    this.els.panel.hidden = true;
    this.composer.setConversation(null);
    this.onClosed && this.onClosed();
  }

  /** Every item after the newest one we hold, page after page. */
  async fetchAfter(generation) {
    for (let i = 0; i < 50; i++) {
      const page = await api.messages(this.id, {after: this.maxSeq, limit: CATCH_UP_PAGE});
      if (generation !== this.generation) return;
      const items = page.messages || [];
      for (const m of items) this.messages.set(m.seq, m);
      if (items.length < CATCH_UP_PAGE) return;
    }
  }

  /** After a reconnect or a gap in seq: fetch what we missed and show it. */
  catchUp() {
    if (!this.id || this.loading) return Promise.resolve();
    if (this.catchingUp) return this.catchingUp;
    const generation = this.generation;
    const wasAtBottom = this.pinned || this.nearBottom();
    this.catchingUp = this.fetchAfter(generation)
      .then(() => {
        if (generation !== this.generation) return;
        this.renderAll();
        if (wasAtBottom) this.scrollToBottom(false);
        this.markRead();
      })
      .catch(() => {})
      .finally(() => {
        this.catchingUp = null;
      });
    return this.catchingUp;
  }

  async loadBefore() {
    if (!this.id || this.loading || this.loadingBefore || !this.hasMoreBefore) return;
    const generation = this.generation;
    const before = this.minSeq;
    if (before <= 1) {
      this.hasMoreBefore = false;
      this.renderStart();
      return;
    }
    this.loadingBefore = true;
    try {
      const page = await api.messages(this.id, {before, limit: PAGE});
      if (generation !== this.generation) return;
      const items = page.messages || [];
      const scroll = this.els.scroll;
      const fromBottom = scroll.scrollHeight - scroll.scrollTop;
      for (const m of items) this.messages.set(m.seq, m);
      this.hasMoreBefore = items.length >= PAGE && this.minSeq > 1;
      this.renderAll();
      scroll.scrollTop = scroll.scrollHeight - fromBottom; // keep the same message under the eyes
    } catch {
      /* tried again on the next scroll */
    } finally {
      if (generation === this.generation) this.loadingBefore = false;
    }
  }

  // ------------------------------------------------------------------ live updates

  onMessage(msg) {
    if (msg.conversation !== this.id) return;
    if (msg.client_id) this.outbox.settle(msg.client_id);
    if (this.loading) {
      this.messages.set(msg.seq, msg); // shown with the rest once loaded
      return;
    }
    const max = this.maxSeq;
    const known = this.messages.has(msg.seq);
    this.messages.set(msg.seq, msg);
    if (max && msg.seq > max + 1) this.catchUp(); // a frame went missing: fetch the gap
    const wasAtBottom = this.pinned || this.nearBottom();
    if (!known && msg.seq > this.renderedMax) this.appendOne(msg);
    else this.renderAll();
    if (wasAtBottom || msg.client_id && store.myClientIds.has(msg.client_id)) this.scrollToBottom(true);
    else if (!known) this.els.newBelow.hidden = false;
    if (msg.sender === "visitor") this.hideTyping();
    this.markRead();
  }

  conversationChanged(conv) {
    if (conv.id !== this.id) return;
    this.render(conv);
    this.composer.update(conv);
  }

  /** A colleague typing in this conversation (routing's collision detection): "Alice is replying…". */
  showReplying(conversationId, advisor) {
    if (conversationId === this.id && advisor?.name) {
      this.showTyping(conversationId, null, format(gettext("%(name)s is replying…"), {name: advisor.name}));
    }
  }

  showTyping(conversationId, name, text = null) {
    if (conversationId !== this.id) return;
    const conv = this.conv;
    const who = name || conv?.visitor?.name;
    this.els.typingText.textContent = text ||
      (who ? format(gettext("%(name)s is typing…"), {name: who}) : gettext("The visitor is typing…"));
    this.els.typing.hidden = false;
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.hideTyping(), TYPING_SHOWN_MS);
  }

  hideTyping() {
    clearTimeout(this.typingTimer);
    this.els.typing.hidden = true;
  }

  async markRead() {
    const conv = this.conv;
    if (!conv || this.loading || document.visibilityState !== "visible") return;
    const seq = this.maxSeq;
    if (!seq || (!conv.unread && seq <= this.readSeq)) return;
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    const id = conv.id;
    try {
      const updated = await api.read(id, seq);
      if (this.id === id) this.readSeq = Math.max(this.readSeq, seq);
      if (updated && updated.id === id) this.onChange(updated);
    } catch {
      /* read again on the next message or focus */
    } finally {
      this.reading = false;
      if (this.readAgain) {
        this.readAgain = false;
        this.markRead();
      }
    }
  }

  // ------------------------------------------------------------------ actions

  async act(verb, arg) {
    const conv = this.conv;
    if (!conv) return;
    const buttons = [this.els.take, this.els.close, this.els.reopen, this.els.assign];
    buttons.forEach((b) => { b.disabled = true; });
    if (verb === "take" || (verb === "assign" && arg === store.me?.username)) assigningMyself(conv.id);
    try {
      let updated;
      if (verb === "assign") updated = await api.assign(conv.id, arg);
      else updated = await api[verb](conv.id);
      if (updated && updated.id) {
        this.onChange(updated);
        if (verb === "take" || verb === "reopen") this.composer.focus();
        const said = {take: gettext("You took this conversation."), close: gettext("Conversation closed."),
                      reopen: gettext("Conversation reopened. It is back in Livechat.")}[verb];
        if (said) this.toast(said);
      }
    } catch (error) {
      if (error.status === 409 && verb === "take") {
        this.toast(gettext("Someone else already took this conversation."), "error");
        api.conversation(conv.id).then((fresh) => this.onChange(fresh)).catch(() => {});
      } else {
        this.toast(error.message || gettext("That did not work. Try again."), "error");
      }
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  async toggleAssignMenu() {
    if (!this.els.assignMenu.hidden) {
      this.closeAssignMenu(true);
      return;
    }
    const menu = this.els.assignMenu;
    this.els.assign.setAttribute("aria-expanded", "true");
    menu.hidden = false;
    if (!store.advisors.length) clear(menu).append(h("p", {class: "menu__empty"}, gettext("Loading advisors…")));
    else this.renderAssignMenu();
    if (Date.now() - store.advisorsAt > 2000) { // statuses change: shown from memory, then as they are now
      try {
        store.advisors = advisorList(await api.advisors());
        store.advisorsAt = Date.now();
      } catch {
        if (!store.advisors.length) {
          clear(menu).append(h("p", {class: "menu__empty"}, gettext("Could not load the advisors.")));
        }
        return;
      }
      if (!menu.hidden) this.renderAssignMenu();
    }
  }

  renderAssignMenu() {
    const menu = this.els.assignMenu;
    const conv = this.conv;
    const current = conv?.assigned?.username || null;
    const items = [];
    // Only the advisors of this conversation's site, with their real status (routing: online, away, offline).
    const site = conv?.site?.key;
    for (const advisor of store.advisors) {
      if (site && Array.isArray(advisor.sites) && !advisor.sites.includes(site)) continue;
      const name = advisor.name || advisor.display_name || advisor.username;
      const status = advisor.status || (advisor.online ? "online" : "offline");
      const label = STATUS_LABELS[status] || status;
      const me = store.me && advisor.username === store.me.username;
      const item = h("button", {type: "button", class: "menu__item", role: "menuitemradio",
                                "aria-checked": String(advisor.username === current), tabindex: "-1",
                                onclick: () => {
                                  this.closeAssignMenu(true);
                                  if (advisor.username !== current) this.act("assign", advisor.username);
                                }},
        avatarFor({...advisor, name}, {size: "xs"}),
        h("span", {class: "menu__label"}, name, me ? h("span", {class: "menu__you"}, gettext(" (you)")) : null),
        h("span", {class: `presence-dot is-${status}`, title: label}),
        h("span", {class: "sr-only"}, `, ${label.toLowerCase()}`),
        typeof advisor.live === "number" ? h("span", {class: "menu__live", title: gettext("Live conversations assigned")},
                                              String(advisor.live)) : null,
        advisor.username === current ? icon(ICONS.check, {cls: "menu__check"}) : null);
      items.push(item);
    }
    if (!items.length) items.push(h("p", {class: "menu__empty"}, gettext("No advisor of this site can be assigned.")));
    if (current) {
      items.push(h("div", {class: "menu__sep", role: "separator"}));
      items.push(h("button", {type: "button", class: "menu__item", role: "menuitem", tabindex: "-1",
                              onclick: () => {
                                this.closeAssignMenu(true);
                                this.act("assign", null);
                              }}, h("span", {class: "menu__label"}, gettext("Unassign"))));
    }
    clear(menu).append(...items);
    (menu.querySelector('[aria-checked="true"]') || menu.querySelector(".menu__item"))?.focus();
  }

  closeAssignMenu(returnFocus) {
    if (this.els.assignMenu.hidden) return;
    this.els.assignMenu.hidden = true;
    this.els.assign.setAttribute("aria-expanded", "false");
    if (returnFocus) this.els.assign.focus();
  }

  onMenuKey(event) {
    const items = Array.from(this.els.assignMenu.querySelectorAll(".menu__item"));
    const index = items.indexOf(document.activeElement);
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      this.closeAssignMenu(true);
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const next = (index + (event.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
      items[next]?.focus();
    } else if (event.key === "Home" || event.key === "End") {
      event.preventDefault();
      items[event.key === "Home" ? 0 : items.length - 1]?.focus();
    } else if (event.key === "Tab") {
      this.closeAssignMenu(false);
    }
  }

  // ------------------------------------------------------------------ rendering: header and panel

  render(conv) {
    const els = this.els;
    const name = conv.visitor?.name || anonymousName(conv.visitor?.id);
    const online = !!conv.visitor?.online;
    els.avatar.textContent = initials(name);
    els.avatar.style.setProperty("--hue", String(hue(conv.visitor?.id ?? conv.id)));
    els.avatar.classList.toggle("is-unanswered", !!conv.unanswered);
    els.avatar.classList.toggle("is-online", online);
    els.name.textContent = name;

    let status;
    if (conv.status === "closed") status = h("span", {class: "pill pill--closed"}, gettext("Closed"));
    else if (conv.status === "bot") status = h("span", {class: "pill pill--bot"}, gettext("Chatbot"));
    else if (!conv.assigned) status = h("span", {class: "pill pill--waiting"}, gettext("Waiting"));
    else {
      status = h("span", {class: "pill pill--live"}, isMine(conv) ? gettext("With you") :
        format(gettext("With %(name)s"), {name: conv.assigned.name}));
    }
    const presence = online ? gettext("Online") : gettext("Offline");
    clear(els.sub).append(
      h("span", {class: `presence-dot${online ? " is-online" : ""}`, title: presence}),
      h("span", {class: "sr-only"}, presence),
      conv.site ? h("span", {class: "thread__sep", "aria-hidden": "true"}, "·") : null,
      conv.site ? siteChip(conv.site) : null,
      h("span", {class: "thread__sep", "aria-hidden": "true"}, "·"),
      status);

    if (els.labels) clear(els.labels).append(...labelChips(conv, "label-chip label-chip--md"));
    els.take.hidden = !(conv.status === "live" && !conv.assigned);
    els.assign.parentElement.hidden = conv.status !== "live";
    els.close.hidden = conv.status !== "live";
    els.reopen.hidden = conv.status !== "closed";

    clear(els.assignee);
    if (conv.assigned) {
      const said = isMine(conv) ? gettext("Assigned to you") :
        format(gettext("Assigned to %(name)s"), {name: conv.assigned.name});
      els.assignee.append(avatarFor(conv.assigned, {size: "md"}), h("span", {class: "sr-only"}, said));
      els.assignee.title = said;
      els.assignee.classList.remove("is-empty");
    } else {
      els.assignee.append(h("span", {class: "avatar avatar--md avatar--empty", "aria-hidden": "true"},
        icon(ICONS.person)),
        h("span", {class: "sr-only"}, gettext("Not assigned")));
      els.assignee.title = gettext("Not assigned");
      els.assignee.classList.add("is-empty");
    }

    clear(els.leadBar);
    els.leadBar.hidden = true;
    if (conv.status === "closed") {
      els.leadBar.append(h("span", null, gettext("This conversation is closed.")),
        h("button", {type: "button", class: "btn btn--small btn--primary", onclick: () => this.act("reopen")},
          gettext("Reopen to reply")));
      els.leadBar.hidden = false;
      els.leadBar.className = "lead-bar lead-bar--closed";
    } else if (conv.status === "bot") {
      els.leadBar.append(h("span", null, gettext("The chatbot is handling this conversation.")));
      els.leadBar.hidden = false;
      els.leadBar.className = "lead-bar lead-bar--bot";
    } else if (!conv.assigned) {
      els.leadBar.append(h("span", null, gettext("Waiting for an advisor. Replying assigns the conversation to you.")));
      els.leadBar.hidden = false;
      els.leadBar.className = "lead-bar lead-bar--waiting";
    }

    const licensed = !!store.me?.licensed;
    els.panelToggle.hidden = !licensed;
    this.renderPanel(conv);
  }

  setPanel(open) {
    if (NARROW.matches) {
      this.drawerOpen = open;
    } else {
      this.panelOpen = open;
      try {
        localStorage.setItem(PANEL_KEY, open ? "1" : "0");
      } catch {
        /* not remembered */
      }
    }
    const conv = this.conv;
    if (conv) this.renderPanel(conv);
    if (!open) this.els.panelToggle.focus();
    else if (NARROW.matches) this.els.panel.querySelector("button")?.focus();
  }

  renderPanel(conv) {
    const els = this.els;
    const licensed = !!store.me?.licensed;
    const show = licensed && (NARROW.matches ? this.drawerOpen : this.panelOpen) && !!conv;
    els.panel.hidden = !show;
    els.panelToggle.setAttribute("aria-expanded", String(show));
    els.panelToggle.setAttribute("aria-label", show ? gettext("Hide visitor details") : gettext("Show visitor details"));
    els.panelToggle.classList.toggle("is-open", show);
    if (!show) return;

    const visitor = conv.visitor || {};
    const variables = visitor.variables || {};
    const order = ["PRENOM", "SOCIETE"];
    const keys = Object.keys(variables).sort((a, b) => {
      const rank = (k) => (order.includes(k) ? order.indexOf(k) : /e-?mail/i.test(k) ? 2 : 3);
      return rank(a) - rank(b) || a.localeCompare(b);
    });
    const row = (label, value) => h("div", {class: "facts__row"}, h("dt", null, label), h("dd", null, value));
    const name = visitor.name || anonymousName(visitor.id);

    clear(els.panel).append(
      h("header", {class: "panel__head"},
        h("h2", {class: "panel__title"}, gettext("Visitor")),
        h("button", {type: "button", class: "icon-btn", "aria-label": gettext("Hide visitor details"),
                     onclick: () => this.setPanel(false)}, icon(ICONS.close))),
      h("div", {class: "panel__card"},
        (() => {
          const a = h("span", {class: `avatar avatar--lg${visitor.online ? " is-online" : ""}`, "aria-hidden": "true"},
            initials(name));
          a.style.setProperty("--hue", String(hue(visitor.id ?? conv.id)));
          if (visitor.online) a.append(h("span", {class: "presence"}));
          return a;
        })(),
        h("div", {class: "panel__who"},
          h("p", {class: "panel__name"}, name),
          h("p", {class: "panel__state"}, visitor.online ? gettext("Online now") : gettext("Offline")))),
      h("section", {class: "panel__section", "aria-labelledby": "panel-vars"},
        h("h3", {id: "panel-vars"}, gettext("Variables")),
        keys.length ?
          h("dl", {class: "facts"}, keys.map((k) => row(k, String(variables[k] ?? "")))) :
          h("p", {class: "panel__muted"}, gettext("The chatbot has not collected anything yet."))),
      h("section", {class: "panel__section", "aria-labelledby": "panel-visit"},
        h("h3", {id: "panel-visit"}, gettext("Visit")),
        h("dl", {class: "facts"},
          row(gettext("Site"), conv.site?.name || conv.site?.key || "—"),
          row(gettext("Sessions"), visitor.sessions !== undefined && visitor.sessions !== null ?
            format(ngettext("%(count)s session", "%(count)s sessions", visitor.sessions), {count: visitor.sessions}) :
            "—"),
          row(gettext("Page"), visitor.page ? link(visitor.page, visitor.page, {class: "facts__link"}) : "—"),
          row(gettext("First seen"), visitor.first_seen ? longTime(visitor.first_seen) : "—"),
          row(gettext("Conversation"), format(gettext("#%(id)s · started %(time)s"),
            {id: conv.id, time: longTime(conv.created_at)})),
          conv.waiting_since ? row(gettext("Waiting since"), longTime(conv.waiting_since)) : null)));
  }

  // ------------------------------------------------------------------ rendering: timeline

  sorted() {
    return Array.from(this.messages.values()).sort((a, b) => a.seq - b.seq);
  }

  renderAll() {
    const items = this.sorted();
    const nodes = [];
    let prev = null;
    for (const m of items) {
      nodes.push(...this.build(m, prev));
      prev = m;
    }
    clear(this.els.timeline).append(...nodes);
    this.renderedMax = items.length ? items[items.length - 1].seq : 0;
    this.lastRendered = prev;
    this.renderStart();
  }

  renderStart() {
    this.els.start.hidden = this.hasMoreBefore || this.loading;
  }

  appendOne(msg) {
    this.els.timeline.append(...this.build(msg, this.lastRendered));
    this.renderedMax = msg.seq;
    this.lastRendered = msg;
  }

  /** The DOM of one item, with a day separator when the day changes. */
  build(msg, prev) {
    const conv = this.conv;
    const out = [];
    if (!prev || dayKey(prev.created_at) !== dayKey(msg.created_at)) {
      out.push(h("li", {class: "day"}, h("span", null, dayLabel(msg.created_at))));
    }
    const time = h("time", {datetime: msg.created_at, title: longTime(msg.created_at)}, clockTime(msg.created_at));

    if (msg.kind === "event" || msg.sender === "system") {
      out.push(h("li", {class: "event", dataset: {seq: msg.seq}}, h("span", {class: "event__text"}, msg.text || ""),
        time));
      return out;
    }

    if (msg.kind === "note") {
      const author = msg.author ? msg.author.name || msg.author.username : null;
      out.push(h("li", {class: "msg msg--note", dataset: {seq: msg.seq}},
        h("div", {class: "note"},
          h("div", {class: "note__head"}, icon(ICONS.note),
            h("span", {class: "note__label"}, gettext("Note")),
            h("span", {class: `note__author${author ? "" : " is-auto"}`}, author || gettext("automatic")),
            time),
          msg.image_url ? this.imageOf(msg, gettext("Image in a note")) : null,
          msg.text ? h("div", {class: "note__text"}, linkify(msg.text)) : null)));
      return out;
    }

    const side = msg.sender === "visitor" ? "in" : "out";
    const grouped = prev && prev.sender === msg.sender && prev.kind !== "event" && prev.kind !== "note" &&
      senderName(prev, conv) === senderName(msg, conv) &&
      Date.parse(msg.created_at) - Date.parse(prev.created_at) < 3 * 60 * 1000;
    const body = h("div", {class: "bubble"});
    if (msg.image_url) body.append(this.imageOf(msg, format(gettext("Image from %(name)s"), {name: senderName(msg, conv)})));
    if (msg.text && !(msg.kind === "image" && !msg.text)) body.append(h("div", {class: "bubble__text"}, linkify(msg.text)));
    const extras = [];
    if (msg.buttons && msg.buttons.length) {
      extras.push(h("div", {class: "choices", role: "group", "aria-label": gettext("Buttons shown to the visitor")},
        msg.buttons.map((b) => h("span", {class: "choice"}, b.label || ""))));
    }
    if (msg.input && msg.input.variable) {
      // The variable's name as code inside the sentence: the sentence is split around its placeholder.
      const [before, after = ""] = gettext("Waits for %(variable)s").split("%(variable)s");
      extras.push(h("div", {class: "asks"}, before, h("code", null, msg.input.variable), after || null));
    }
    out.push(h("li", {class: `msg msg--${side} msg--${msg.sender}${grouped ? " is-grouped" : ""}`,
                      dataset: {seq: msg.seq}},
      h("div", {class: "msg__meta"},
        msg.sender === "bot" ? icon(ICONS.bot, {cls: "msg__icon"}) : null,
        h("span", {class: "msg__author"}, senderName(msg, conv)), time),
      body, ...extras));
    return out;
  }

  imageOf(msg, alt) {
    const img = image(msg.image_url, {alt, class: "bubble__image"});
    if (!img) return h("span", {class: "bubble__missing"}, gettext("Image unavailable"));
    if (msg.width > 0 && msg.height > 0) {
      // Its room reserved before it loads, so the thread's end does not move: at most 260 px high (the CSS's),
      // narrower if the bubble is.
      const scale = Math.min(1, IMAGE_MAX_HEIGHT / msg.height);
      img.width = Math.round(msg.width * scale);
      img.height = Math.round(msg.height * scale);
      img.style.aspectRatio = `${msg.width} / ${msg.height}`;
    }
    const a = link(msg.image_url, "", {class: "bubble__image-link", "aria-label": gettext("Open the image in a new tab")});
    if (a.nodeType === Node.ELEMENT_NODE) {
      a.append(img);
      return a;
    }
    return img;
  }

  renderPending() {
    const entries = this.id ? this.outbox.pending(this.id) : [];
    const nodes = entries.map((e) => {
      const state = {sending: gettext("Sending…"), retrying: gettext("Connection lost, retrying…"),
                     failed: e.error || gettext("Not sent.")}[e.state];
      const body = h("div", {class: "bubble"});
      if (e.previewUrl) body.append(image(e.previewUrl, {alt: gettext("Image being sent"), class: "bubble__image"}));
      if (e.text) body.append(h("div", {class: "bubble__text"}, e.text));
      const inner = e.kind === "note" ?
        h("div", {class: "note"}, h("div", {class: "note__head"}, icon(ICONS.note),
          h("span", {class: "note__label"}, gettext("Note")), h("span", {class: "pending__state"}, state)), body) :
        [h("div", {class: "msg__meta"}, h("span", {class: "pending__state"}, state)), body];
      const actions = e.state === "failed" ? h("div", {class: "pending__actions"},
        e.final ? null :
          h("button", {type: "button", class: "btn btn--small", onclick: () => this.outbox.retry(e.clientId)},
            gettext("Retry")),
        h("button", {type: "button", class: "btn btn--small btn--ghost",
                     onclick: () => this.outbox.discard(e.clientId)}, gettext("Discard"))) : null;
      return h("li", {class: `msg ${e.kind === "note" ? "msg--note" : "msg--out msg--advisor"} is-pending is-${e.state}`,
                      dataset: {clientId: e.clientId}}, inner, actions);
    });
    const wasAtBottom = this.pinned || this.nearBottom();
    clear(this.els.pending).append(...nodes);
    if (wasAtBottom || nodes.length) this.scrollToBottom(false);
  }

  nearBottom() {
    const s = this.els.scroll;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  scrollToBottom(smooth) {
    const s = this.els.scroll;
    this.pinned = true;
    s.scrollTo({top: s.scrollHeight, behavior: smooth ? "smooth" : "auto"});
    this.els.newBelow.hidden = true;
  }

  refreshTimes() {
    /* clock times do not age; day labels only change at midnight, handled on the next render */
  }
}
