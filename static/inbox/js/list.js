// The conversation list: one view (site tab, box, filter) loaded page by page with the API's cursor, kept
// live from socket frames, navigable with the keyboard.

import {api} from "./api.js";
import {clear, h, image} from "./dom.js";
import {anonymousName, hue, initials, shortTime} from "./format.js";
import {format, gettext} from "./i18n.js";
import {labelChips} from "./productivity.js";
import {compareConversations, isMine, matchesView, previewOf, siteColor, store} from "./store.js";

const PAGE = 25;

export function avatarFor(person, {size = "", seed} = {}) {
  const el = h("span", {class: `avatar${size ? ` avatar--${size}` : ""}`, "aria-hidden": "true"});
  const img = person?.avatar_url ? image(person.avatar_url, {alt: ""}) : null;
  if (img) el.append(img);
  else el.textContent = initials(person?.name || person?.username);
  el.style.setProperty("--hue", String(hue(seed ?? person?.username ?? person?.name)));
  return el;
}

export function siteChip(site) {
  const chip = h("span", {class: "site-chip"}, site.name || site.key);
  chip.style.setProperty("--hue", String(hue(site.key)));
  const color = siteColor(site.key);
  if (color) chip.style.setProperty("--site", color);
  return chip;
}

export class ConversationList {
  constructor({list, scroll, sentinel, status, onOpen, onCounts, multiSite}) {
    this.ul = list;
    this.scroll = scroll;
    this.status = status;
    this.onOpen = onOpen;
    this.onCounts = onCounts;
    this.multiSite = multiSite;
    this.view = {site: null, box: "live", filter: "all", advisor: null, label: null};
    this.ids = [];
    this.rows = new Map(); // id -> li
    this.next = null;
    this.loading = false;
    this.generation = 0;
    this.activeId = null;
    this.typingTimers = new Map();
    this.replying = new Map(); // conversation id -> "Alice is replying…", while the typing indicator shows
    this.loaded = false;

    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadMore();
    }, {root: scroll, rootMargin: "300px"});
    this.sentinel = sentinel;
    this.observer.observe(sentinel);

    this.ul.addEventListener("keydown", (event) => this.onKey(event));
    this.ul.addEventListener("click", (event) => {
      const button = event.target.closest("button.row");
      if (button) this.onOpen(Number(button.dataset.id), {focusList: true});
    });
  }

  params(extra = {}) {
    const p = {box: this.view.box, filter: this.view.advisor ? "all" : this.view.filter, limit: PAGE, ...extra};
    if (this.view.site) p.site = this.view.site;
    if (this.view.advisor) p.advisor = this.view.advisor;
    if (this.view.label) p.label = this.view.label;
    return p;
  }

  setView(changes) {
    Object.assign(this.view, changes);
    return this.reload();
  }

  /** Load the first page of the current view again (after a view change or a reconnect). */
  async reload() {
    const generation = ++this.generation;
    this.loading = true;
    this.next = null;
    this.setStatus(this.loaded ? "" : gettext("Loading conversations…"));
    let data;
    try {
      data = await api.conversations(this.params());
    } catch (error) {
      if (generation === this.generation) {
        this.loading = false;
        this.setStatus(gettext("Could not load the conversations. They will refresh when the connection is back."));
      }
      throw error;
    }
    if (generation !== this.generation) return null;
    this.loading = false;
    this.loaded = true;
    for (const conv of data.results || []) store.conversations.set(conv.id, conv);
    const keep = this.activeId && store.conversations.get(this.activeId);
    const ids = (data.results || []).map((c) => c.id);
    if (keep && !ids.includes(this.activeId) && matchesView(keep, this.view)) ids.push(this.activeId);
    this.ids = [];
    this.rows.forEach((li) => li.remove());
    this.rows.clear();
    for (const id of ids) this.insert(store.conversations.get(id));
    this.next = data.next || null;
    this.updateStatus();
    if (data.counts) this.onCounts(data.counts, this.view.site);
    this.scroll.scrollTop = 0;
    this.recheckSentinel();
    return data;
  }

  /** The observer only reports changes: a sentinel that stayed in view while a page was loading would never
   * ask for the next one. Observing it again reports where it is now. */
  recheckSentinel() {
    if (!this.next) return;
    this.observer.unobserve(this.sentinel);
    this.observer.observe(this.sentinel);
  }

  async loadMore() {
    if (!this.next || this.loading) return;
    const generation = this.generation;
    this.loading = true;
    this.setStatus(gettext("Loading more…"));
    try {
      const data = await api.conversations(this.params({cursor: this.next}));
      if (generation !== this.generation) return;
      for (const conv of data.results || []) {
        store.conversations.set(conv.id, conv);
        if (!this.rows.has(conv.id)) this.insert(conv, {force: true});
        else this.update(conv);
      }
      this.next = data.next || null;
      if (data.counts) this.onCounts(data.counts, this.view.site);
    } catch {
      this.setStatus(gettext("Could not load more conversations."));
      return;
    } finally {
      if (generation === this.generation) this.loading = false;
    }
    this.updateStatus();
    this.recheckSentinel();
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  updateStatus() {
    if (this.ids.length === 0) {
      const empty = {
        live: {all: gettext("No live conversations right now."), unassigned: gettext("Nobody is waiting. Nice work!"),
               unread: gettext("You are all caught up."), mine: gettext("No conversation is assigned to you.")},
        closed: {all: gettext("No closed conversations.")},
        chatbot: {all: gettext("The chatbot has no conversation in progress.")},
      }[this.view.box];
      this.setStatus(this.view.advisor ? gettext("No conversation assigned to this advisor.") :
        (empty[this.view.filter] || empty.all || gettext("Nothing here.")));
    } else {
      this.setStatus(this.next ? "" : (this.ids.length > 8 ? gettext("That's everything.") : ""));
    }
  }

  // ------------------------------------------------------------------ live updates

  /** A conversation changed (frame, message, action): show it, move it, or drop it from this view. */
  upsert(conv) {
    // The open conversation stays in an "Unread" list once read, until the view changes; any other change
    // (closed, reopened, taken) moves it where it belongs.
    const sticky = conv.id === this.activeId && this.rows.has(conv.id) && this.view.filter === "unread" &&
      !this.view.advisor && matchesView(conv, {...this.view, filter: "all"});
    const belongs = matchesView(conv, this.view) || sticky;
    if (!belongs) {
      this.remove(conv.id);
      return;
    }
    if (this.rows.has(conv.id)) this.update(conv);
    else this.insert(conv);
    this.updateStatus();
  }

  insert(conv, {force = false} = {}) {
    if (!conv || this.rows.has(conv.id)) return;
    // Past the loaded pages, a conversation older than the last row will come with its page.
    const last = this.ids.length ? store.conversations.get(this.ids[this.ids.length - 1]) : null;
    if (!force && this.next && last && compareConversations(conv, last) > 0 && conv.id !== this.activeId) return;
    const li = h("li", {class: "conv-list__item"});
    this.rows.set(conv.id, li);
    this.renderRow(conv, li);
    this.place(conv.id, li);
  }

  update(conv) {
    const li = this.rows.get(conv.id);
    if (!li) return;
    this.renderRow(conv, li);
    this.place(conv.id, li);
  }

  place(id, li) {
    const hadFocus = li.contains(document.activeElement);
    this.ids = this.ids.filter((x) => x !== id);
    const conv = store.conversations.get(id);
    let index = this.ids.findIndex((other) => compareConversations(conv, store.conversations.get(other)) < 0);
    if (index === -1) index = this.ids.length;
    this.ids.splice(index, 0, id);
    const before = this.rows.get(this.ids[index + 1]) || null;
    if (li.parentNode !== this.ul || li.nextSibling !== before) {
      this.ul.insertBefore(li, before);
      if (hadFocus) li.querySelector("button")?.focus({preventScroll: true});
    }
    this.syncTabIndex();
  }

  remove(id) {
    const li = this.rows.get(id);
    if (!li) return;
    const hadFocus = li.contains(document.activeElement);
    li.remove();
    this.rows.delete(id);
    this.ids = this.ids.filter((x) => x !== id);
    this.syncTabIndex();
    if (hadFocus) this.focusRow(this.activeId ?? this.ids[0]);
    this.updateStatus();
  }

  renderRow(conv, li) {
    const preview = previewOf(conv);
    const name = conv.visitor?.name || anonymousName(conv.visitor?.id);
    const online = !!conv.visitor?.online;
    const avatar = h("span", {class: `avatar avatar--row${conv.unanswered ? " is-unanswered" : ""}`,
                              "aria-hidden": "true"}, initials(name));
    avatar.style.setProperty("--hue", String(hue(conv.visitor?.id ?? conv.id)));
    if (online) avatar.append(h("span", {class: "presence"}));

    const states = [];
    if (conv.unread) states.push(gettext("unread"));
    if (conv.unanswered) states.push(gettext("waiting for an answer"));
    if (online) states.push(gettext("visitor online"));
    if (conv.status === "live" && !conv.assigned) states.push(gettext("unassigned"));

    const top = h("span", {class: "row__top"},
      h("span", {class: "row__name"}, name),
      this.multiSite() && !this.view.site && conv.site ?
        siteChip(conv.site) : null,
      ...labelChips(conv),
      h("time", {class: "row__time", datetime: conv.last_message?.created_at || conv.updated_at || ""},
        shortTime(conv.last_message?.created_at || conv.updated_at)));
    const previewEl = h("span", {class: `row__preview${preview.event ? " is-event" : ""}`},
      preview.who ? h("span", {class: "row__who"}, preview.who) : null, preview.text);
    const assignee = conv.assigned ? avatarFor(conv.assigned, {size: "xs"}) : null;
    if (assignee) {
      assignee.title = isMine(conv) ? gettext("Assigned to you") :
        format(gettext("Assigned to %(name)s"), {name: conv.assigned.name});
    }
    const bottom = h("span", {class: "row__bottom"}, previewEl,
      h("span", {class: "row__typing"}, this.replying.get(conv.id) || gettext("typing…")),
      conv.status === "live" && !conv.assigned ? h("span", {class: "pill pill--waiting"}, gettext("Waiting")) : null,
      conv.status === "live" && conv.awaiting_email ?
        h("span", {class: "pill", title: gettext("The away message asked the visitor for an e-mail address")},
          gettext("Away")) : null,
      assignee);

    const button = h("button", {
      type: "button",
      class: `row${conv.unread ? " is-unread" : ""}${conv.unanswered ? " is-unanswered" : ""}` +
        `${conv.id === this.activeId ? " is-active" : ""}`,
      dataset: {id: conv.id},
      tabindex: "-1",
      "aria-current": conv.id === this.activeId ? "true" : null,
    }, avatar, h("span", {class: "row__main"}, top, bottom),
    states.length ? h("span", {class: "sr-only"}, `, ${states.join(", ")}`) : null);
    const hadFocus = li.contains(document.activeElement);
    clear(li).append(button);
    if (this.typingTimers.has(conv.id)) li.classList.add("is-typing");
    if (hadFocus) button.focus({preventScroll: true});
  }

  /** A colleague replying here (collision detection): the row says who, for as long as typing shows. */
  showReplying(id, advisor) {
    const span = this.rows.get(id)?.querySelector(".row__typing");
    if (!span || !advisor?.name) return;
    this.replying.set(id, format(gettext("%(name)s is replying…"), {name: advisor.name}));
    span.textContent = this.replying.get(id);
    this.showTyping(id);
  }

  showTyping(id) {
    const li = this.rows.get(id);
    if (!li) return;
    li.classList.add("is-typing");
    clearTimeout(this.typingTimers.get(id));
    this.typingTimers.set(id, setTimeout(() => {
      this.typingTimers.delete(id);
      this.rows.get(id)?.classList.remove("is-typing");
      this.replying.delete(id);
      const span = this.rows.get(id)?.querySelector(".row__typing");
      if (span) span.textContent = gettext("typing…");
    }, 4000));
  }

  refreshTimes() {
    for (const t of this.ul.querySelectorAll("time.row__time")) t.textContent = shortTime(t.getAttribute("datetime"));
  }

  // ------------------------------------------------------------------ selection and keyboard

  setActive(id) {
    this.activeId = id;
    for (const [rowId, li] of this.rows) {
      const button = li.firstElementChild;
      if (!button) continue;
      button.classList.toggle("is-active", rowId === id);
      if (rowId === id) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
    this.syncTabIndex();
  }

  syncTabIndex() {
    const target = this.rows.has(this.activeId) ? this.activeId : this.ids[0];
    for (const [rowId, li] of this.rows) {
      const button = li.firstElementChild;
      if (button) button.tabIndex = rowId === target ? 0 : -1;
    }
  }

  focusRow(id) {
    const button = this.rows.get(id)?.firstElementChild;
    if (button) {
      button.focus();
      button.scrollIntoView({block: "nearest"});
    }
  }

  /** The id `delta` rows away from the open one (or the first row). */
  neighbour(delta) {
    if (!this.ids.length) return null;
    const index = this.ids.indexOf(this.activeId);
    if (index === -1) return this.ids[delta > 0 ? 0 : this.ids.length - 1];
    const next = Math.max(0, Math.min(this.ids.length - 1, index + delta));
    if (next >= this.ids.length - 3) this.loadMore();
    return this.ids[next];
  }

  onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const current = event.target.closest("button.row");
    const index = current ? this.ids.indexOf(Number(current.dataset.id)) : -1;
    let target = null;
    switch (event.key) {
      case "ArrowDown":
      case "j":
        target = this.ids[Math.min(this.ids.length - 1, index + 1)];
        break;
      case "ArrowUp":
      case "k":
        target = this.ids[Math.max(0, index - 1)];
        break;
      case "Home":
        target = this.ids[0];
        break;
      case "End":
        target = this.ids[this.ids.length - 1];
        break;
      default:
        return;
    }
    event.preventDefault();
    event.stopPropagation();
    if (target === undefined || target === null) return;
    if (this.ids.indexOf(target) >= this.ids.length - 3) this.loadMore();
    this.focusRow(target);
    this.onOpen(target, {focusList: true});
  }
}
