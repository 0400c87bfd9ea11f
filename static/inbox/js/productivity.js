// Advisor productivity (issue 16): canned responses in the composer (`/`), the settings panel that manages
// them and the labels, labels on conversations, search, transcripts and the keyboard overlay (`?`).
// Everything the API returns goes into the page as text (dom.js), never as markup.

import {api, request} from "./api.js";
import {clear, h} from "./dom.js";
import {anonymousName} from "./format.js";
import {format, gettext, ngettext} from "./i18n.js";
import {store} from "./store.js";

const C = "/api/inbox/conversations";

export const productivityApi = {
  canned: () => request("GET", "/api/inbox/canned"),
  cannedCreate: (body) => request("POST", "/api/inbox/canned", {json: body}),
  cannedUpdate: (id, body) => request("PATCH", `/api/inbox/canned/${id}`, {json: body}),
  cannedDelete: (id) => request("DELETE", `/api/inbox/canned/${id}`),
  labels: () => request("GET", "/api/inbox/labels"),
  labelCreate: (name, color) => request("POST", `/api/inbox/labels/${encodeURIComponent(name)}`, {json: {color}}),
  labelDelete: (name) => request("DELETE", `/api/inbox/labels/${encodeURIComponent(name)}`),
  labelsChange: (id, body) => request("POST", `${C}/${id}/labels`, {json: body}),
  search: (params, signal) => request("GET", "/api/inbox/search", {params, signal}),
};

const VARIABLE = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

/** A canned text with `{{VARIABLE}}`s filled from the conversation's variables (empty for an advisor without a
 * license, so every placeholder stays); returns the text and the placeholders left to fill. */
export function fillVariables(text, variables) {
  const missing = [];
  const filled = text.replace(VARIABLE, (whole, name) => {
    const value = variables && variables[name];
    if (value === undefined || value === null || value === "") {
      missing.push(whole);
      return whole;
    }
    return String(value);
  });
  return {text: filled, missing};
}

/** "team" or "mine", the scope of a canned response as the settings list shows it. */
function scopeName(item) {
  return item.scope === "account" ? gettext("team") : gettext("mine");
}

/** The languages an advisor may choose ("" follows the browser), each named in its own language. */
const LANGUAGES = [["en", "English"], ["fr", "Français"]];

function fold(text) {
  return (text || "").normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
}

/** Label chips for a row or the thread header. */
export function labelChips(conv, cls = "label-chip") {
  return (conv?.labels || []).map((label) => {
    const chip = h("span", {class: cls, title: format(gettext("Label: %(name)s"), {name: label.name})}, label.name);
    if (/^#[0-9a-f]{6}$/i.test(label.color || "")) chip.style.setProperty("--label", label.color);
    return chip;
  });
}

// ------------------------------------------------------------------ canned responses

export const canned = {
  items: [],
  loaded: null,
  listeners: new Set(),
  load(force = false) {
    if (!this.loaded || force) {
      this.loaded = productivityApi.canned().then((data) => {
        this.items = data?.results || [];
        for (const fn of this.listeners) fn(this.items);
        return this.items;
      }).catch((error) => {
        this.loaded = null;
        throw error;
      });
    }
    return this.loaded;
  },
};

/** The `/` list of the composer: typing `/` at the start of a word lists the canned responses whose shortcut or
 * text match what follows; arrows move, Enter or Tab inserts, Escape closes. */
export class CannedPicker {
  constructor({form, textarea, list, missing, getConv}) {
    this.form = form;
    this.textarea = textarea;
    this.ul = list;
    this.missing = missing;
    this.getConv = getConv;
    this.open = false;
    this.matches = [];
    this.index = 0;
    this.start = -1;
    // A textarea is a textbox (ARIA allows it no combobox role, nor aria-expanded): the list is announced by
    // aria-controls and aria-activedescendant.
    textarea.setAttribute("aria-autocomplete", "list");
    textarea.setAttribute("aria-controls", list.id);
    textarea.addEventListener("input", () => this.update());
    textarea.addEventListener("click", () => this.update());
    // Close a little after the focus leaves (a click on an option lands first), unless it came back meanwhile: an
    // advisor who clicks the note switch and types "/" at once must not lose the list that typing opened.
    textarea.addEventListener("blur", () => setTimeout(() => {
      if (document.activeElement !== textarea) this.close();
    }, 150));
    // Capture on the form: the composer's own Enter (send) and Escape listeners on the textarea never see a key
    // the open list used.
    form.addEventListener("keydown", (event) => this.onKey(event), true);
    list.addEventListener("mousedown", (event) => event.preventDefault()); // keep the textarea's focus
    list.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.choose(Number(option.dataset.index));
    });
  }

  /** The `/query` just before the caret, or null. */
  token() {
    const t = this.textarea;
    if (t.selectionStart !== t.selectionEnd) return null;
    const before = t.value.slice(0, t.selectionStart);
    const m = before.match(/(^|\s)\/([\p{L}\p{N}_-]*)$/u);
    if (!m) return null;
    return {start: before.length - m[2].length - 1, query: m[2]};
  }

  async update() {
    const token = this.token();
    if (!token) {
      this.close();
      return;
    }
    this.start = token.start;
    if (!canned.loaded) {
      try {
        await canned.load();
      } catch {
        return;
      }
    }
    const current = this.token();
    if (!current) return;
    const q = fold(current.query);
    const items = canned.items;
    const byShortcut = items.filter((c) => c.shortcut.startsWith(q));
    const byText = items.filter((c) => !c.shortcut.startsWith(q) && (c.shortcut.includes(q) || fold(c.text).includes(q)));
    this.matches = [...byShortcut, ...byText].slice(0, 8);
    this.index = 0;
    this.render(items.length === 0);
  }

  render(none) {
    const ul = this.ul;
    clear(ul);
    if (!this.matches.length) {
      ul.append(h("li", {class: "canned__empty", role: "presentation"},
        none ? gettext("No canned responses yet: add some in Saved replies.") : gettext("No canned response matches.")));
    }
    this.matches.forEach((item, i) => {
      ul.append(h("li", {id: `canned-option-${i}`, role: "option", class: "canned__option",
                         "aria-selected": String(i === this.index), dataset: {index: i}},
        h("span", {class: "canned__shortcut"}, `/${item.shortcut}`),
        item.scope === "account" ? h("span", {class: "canned__scope"}, gettext("team")) : null,
        h("span", {class: "canned__text"}, item.text.replace(/\s+/g, " "))));
    });
    ul.hidden = false;
    this.open = true;
    this.syncActive();
  }

  syncActive() {
    for (const option of this.ul.querySelectorAll("[role=option]")) {
      const on = Number(option.dataset.index) === this.index;
      option.setAttribute("aria-selected", String(on));
      if (on) option.scrollIntoView({block: "nearest"});
    }
    if (this.matches.length) this.textarea.setAttribute("aria-activedescendant", `canned-option-${this.index}`);
    else this.textarea.removeAttribute("aria-activedescendant");
  }

  close() {
    if (!this.open) return;
    this.open = false;
    this.ul.hidden = true;
    clear(this.ul);
    this.textarea.removeAttribute("aria-activedescendant");
  }

  onKey(event) {
    if (!this.open || event.isComposing) return;
    const stop = () => {
      event.preventDefault();
      event.stopImmediatePropagation();
    };
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      stop();
      if (!this.matches.length) return;
      const delta = event.key === "ArrowDown" ? 1 : -1;
      this.index = (this.index + delta + this.matches.length) % this.matches.length;
      this.syncActive();
    } else if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey) {
      if (!this.matches.length) {
        if (event.key === "Tab") this.close();
        return;
      }
      stop();
      this.choose(this.index);
    } else if (event.key === "Escape") {
      stop();
      this.close();
    }
  }

  choose(index) {
    const item = this.matches[index];
    const token = this.token();
    if (!item || !token) return;
    const t = this.textarea;
    const conv = this.getConv();
    const {text, missing} = fillVariables(item.text, conv?.visitor?.variables || {});
    const caret = t.selectionStart;
    t.value = t.value.slice(0, token.start) + text + t.value.slice(caret);
    this.close();
    const insertedEnd = token.start + text.length;
    t.focus();
    t.setSelectionRange(insertedEnd, insertedEnd);
    t.dispatchEvent(new Event("input", {bubbles: true}));
    this.close();
    this.showMissing(missing, token.start, text);
  }

  /** A placeholder left unfilled is selected (the advisor types over it) and named under the composer. */
  showMissing(missing, start, text) {
    if (!missing.length) {
      this.missing.hidden = true;
      return;
    }
    const at = text.indexOf(missing[0]);
    if (at >= 0) this.textarea.setSelectionRange(start + at, start + at + missing[0].length);
    // The placeholders are marked inside the sentence: it is split around its own placeholder.
    const [before, after = ""] = gettext("Fill in %(variables)s before sending.").split("%(variables)s");
    clear(this.missing).append(before, ...[...new Set(missing)].map((m) => h("mark", null, m)), after);
    this.missing.hidden = false;
    const hide = () => {
      if (!VARIABLE.test(this.textarea.value)) {
        this.missing.hidden = true;
        this.textarea.removeEventListener("input", hide);
      }
      VARIABLE.lastIndex = 0;
    };
    this.textarea.addEventListener("input", hide);
  }
}

// ------------------------------------------------------------------ labels

export const labels = {
  items: [],
  listeners: new Set(),
  async load() {
    try {
      const data = await productivityApi.labels();
      this.items = data?.results || [];
    } catch {
      /* kept as they were */
    }
    for (const fn of this.listeners) fn(this.items);
    return this.items;
  },
};

/** The label filter of the list: hidden while the account has no labels. */
export function bindLabelFilter(select, onChange) {
  const render = (items) => {
    const current = select.value;
    clear(select).append(h("option", {value: ""}, gettext("All labels")),
      ...items.map((label) => h("option", {value: label.name}, label.name)));
    select.value = items.some((l) => l.name === current) ? current : "";
    select.hidden = !items.length;
    if (current && select.value !== current) onChange("");
  };
  labels.listeners.add(render);
  select.addEventListener("change", () => onChange(select.value));
}

/** The thread header's "Labels" menu: a checkbox per account label. */
export class LabelMenu {
  constructor({button, menu, getConv, onChange, toast}) {
    this.button = button;
    this.menu = menu;
    this.getConv = getConv;
    this.onChange = onChange;
    this.toast = toast;
    button.addEventListener("click", () => (menu.hidden ? this.show() : this.hide(true)));
    menu.addEventListener("keydown", (event) => {
      const items = Array.from(menu.querySelectorAll(".menu__item"));
      const index = items.indexOf(document.activeElement);
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        this.hide(true);
      } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        items[(index + (event.key === "ArrowDown" ? 1 : -1) + items.length) % items.length]?.focus();
      } else if (event.key === "Tab") {
        this.hide(false);
      }
    });
    document.addEventListener("click", (event) => {
      if (!menu.hidden && !menu.contains(event.target) && !button.contains(event.target)) this.hide(false);
    });
  }

  async show() {
    this.menu.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    await labels.load();
    this.render();
  }

  hide(returnFocus) {
    if (this.menu.hidden) return;
    this.menu.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
    if (returnFocus) this.button.focus();
  }

  render() {
    const conv = this.getConv();
    const on = new Set((conv?.labels || []).map((l) => l.name));
    const items = labels.items.map((label) => {
      const swatch = h("span", {class: "label-swatch", "aria-hidden": "true"});
      swatch.style.setProperty("--label", label.color);
      return h("button", {type: "button", class: "menu__item", role: "menuitemcheckbox", tabindex: "-1",
                          "aria-checked": String(on.has(label.name)),
                          onclick: () => this.toggle(label.name, !on.has(label.name))},
        swatch, h("span", {class: "menu__label"}, label.name), on.has(label.name) ? " ✓" : null);
    });
    if (!items.length) {
      items.push(h("p", {class: "menu__empty"}, gettext("No labels yet: staff add them in Settings.")));
    }
    clear(this.menu).append(...items);
    this.menu.querySelector(".menu__item")?.focus();
  }

  async toggle(name, add) {
    const conv = this.getConv();
    if (!conv) return;
    try {
      const updated = await productivityApi.labelsChange(conv.id, add ? {add: [name]} : {remove: [name]});
      this.onChange(updated);
      this.render();
    } catch (error) {
      this.toast(format(gettext("Could not change the labels: %(reason)s"), {reason: error.message}), "error");
    }
  }
}

// ------------------------------------------------------------------ settings panel

/** "Settings": the advisor's and the account's canned responses, the account's labels, and the advisor's language.
 * Staff manage the account's; the API refuses the others (403), which the panel says. */
export class SettingsDialog {
  constructor({dialog, openButton, toast}) {
    this.dialog = dialog;
    this.toast = toast;
    openButton.addEventListener("click", () => this.show());
    dialog.addEventListener("close", () => openButton.focus());
  }

  async show() {
    if (!this.dialog.open) clear(this.dialog); // a language picked but not applied last time is forgotten
    this.render();
    if (!this.dialog.open) this.dialog.showModal();
    await Promise.all([canned.load(true).catch(() => {}), labels.load()]);
    this.render();
  }

  async run(action, done) {
    try {
      await action();
      if (done) this.toast(done);
    } catch (error) {
      this.toast(error.status === 403 ? gettext("Only staff can change the team's replies and labels.") :
        format(gettext("Not saved: %(reason)s"), {reason: error.message}), "error");
      return false;
    }
    await Promise.all([canned.load(true).catch(() => {}), labels.load()]);
    this.render();
    return true;
  }

  render() {
    const d = this.dialog;
    // The panel draws again when its lists arrive: a language picked meanwhile stays picked.
    const pickedLanguage = d.querySelector("#settings-language")?.value;
    const list = h("ul", {class: "settings__list", "aria-label": gettext("Canned responses")},
      canned.items.map((item) => h("li", {class: "settings__item"},
        h("span", {class: "canned__shortcut"}, `/${item.shortcut}`),
        h("span", {class: "canned__scope"}, scopeName(item)),
        h("span", {class: "settings__text"}, item.text),
        h("button", {type: "button", class: "btn btn--small",
                     "aria-label": format(gettext("Edit /%(shortcut)s"), {shortcut: item.shortcut}),
                     onclick: () => this.edit(item)}, gettext("Edit")),
        h("button", {type: "button", class: "btn btn--small btn--ghost",
                     "aria-label": format(gettext("Delete /%(shortcut)s"), {shortcut: item.shortcut}),
                     onclick: () => this.run(() => productivityApi.cannedDelete(item.id), gettext("Deleted."))},
          gettext("Delete")))));
    const shortcut = h("input", {name: "shortcut", required: true, pattern: "[a-z0-9_\\-]{1,32}", maxlength: "32",
                                 placeholder: gettext("hello"), "aria-label": gettext("Shortcut"), class: "input"});
    const text = h("textarea", {name: "text", required: true, rows: "3", maxlength: "4000", class: "input",
                                "aria-label": gettext("Text"),
                                placeholder: gettext("Hi {{PRENOM}}, thanks for your message!")});
    const scope = h("select", {name: "scope", class: "select", "aria-label": gettext("For")},
      h("option", {value: "personal"}, gettext("Only me")),
      h("option", {value: "account"}, gettext("The whole team (staff)")));
    const form = h("form", {class: "settings__form"}, shortcut, scope, text,
      h("button", {type: "submit", class: "btn btn--primary btn--small"}, gettext("Add reply")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run(() => productivityApi.cannedCreate({shortcut: shortcut.value.trim(), text: text.value,
                                                    scope: scope.value}), gettext("Saved."));
    });

    const labelList = h("ul", {class: "settings__labels", "aria-label": gettext("Labels")},
      labels.items.map((label) => {
        const chip = labelChips({labels: [label]})[0];
        return h("li", null, chip, h("button", {type: "button", class: "btn btn--small btn--ghost",
                                                "aria-label": format(gettext("Delete the label %(name)s"),
                                                                     {name: label.name}),
                                                onclick: () => this.run(() => productivityApi.labelDelete(label.name),
                                                                        gettext("Label deleted."))},
                                  gettext("Delete")));
      }));
    const labelName = h("input", {name: "label", required: true, maxlength: "40", class: "input",
                                  "aria-label": gettext("Label name"), placeholder: gettext("billing")});
    const labelColor = h("input", {type: "color", name: "color", value: "#64748b",
                                   "aria-label": gettext("Label colour")});
    const labelForm = h("form", {class: "settings__form settings__form--row"}, labelName, labelColor,
      h("button", {type: "submit", class: "btn btn--small"}, gettext("Add label")));
    labelForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run(() => productivityApi.labelCreate(labelName.value.trim(), labelColor.value), gettext("Label added."));
    });

    clear(d).append(
      h("header", {class: "settings__head"}, h("h2", {id: "settings-title"}, gettext("Settings")),
        h("button", {type: "button", class: "icon-btn", "aria-label": gettext("Close"), onclick: () => d.close()},
          "×")),
      h("h3", null, gettext("Saved replies")),
      h("p", {class: "settings__hint"}, gettext("Type / in the reply box to insert one. {{PRENOM}} and the other " +
        "variables are filled from the conversation.")),
      canned.items.length ? list : h("p", {class: "menu__empty"}, gettext("No saved replies yet.")),
      form,
      h("h3", null, gettext("Labels")),
      labels.items.length ? labelList : h("p", {class: "menu__empty"}, gettext("No labels yet.")),
      labelForm,
      ...this.languageForm(pickedLanguage));
  }

  /** The advisor's language: saved with PATCH /api/inbox/me, then the page loads again in it (its templates and
   * its catalogue, /jsi18n/?lang=…, follow the language of the request). */
  languageForm(picked) {
    const chosen = picked ?? (store.me?.language || "");
    const select = h("select", {id: "settings-language", name: "language", class: "select"},
      h("option", {value: ""}, gettext("Browser's language")),
      LANGUAGES.map(([code, name]) => h("option", {value: code, lang: code}, name)));
    select.value = chosen;
    const form = h("form", {class: "settings__form settings__form--row"},
      h("label", {for: "settings-language", class: "sr-only"}, gettext("Language")), select,
      h("button", {type: "submit", class: "btn btn--small"}, gettext("Apply")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api.updateMe({language: select.value});
      } catch (error) {
        this.toast(format(gettext("Not saved: %(reason)s"), {reason: error.message}), "error");
        return;
      }
      location.reload();
    });
    return [h("h3", null, gettext("Language")), form];
  }

  edit(item) {
    const text = h("textarea", {rows: "3", maxlength: "4000", class: "input",
                                "aria-label": format(gettext("Text of /%(shortcut)s"), {shortcut: item.shortcut})});
    text.value = item.text;
    const form = h("form", {class: "settings__form"}, text,
      h("button", {type: "submit", class: "btn btn--primary btn--small"}, gettext("Save")),
      h("button", {type: "button", class: "btn btn--small btn--ghost", onclick: () => this.render()}, gettext("Cancel")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run(() => productivityApi.cannedUpdate(item.id, {text: text.value}), gettext("Saved."));
    });
    const li = Array.from(this.dialog.querySelectorAll(".settings__item"))
      .find((el) => el.querySelector(".canned__shortcut")?.textContent === `/${item.shortcut}` &&
        el.querySelector(".canned__scope")?.textContent === scopeName(item));
    if (li) {
      li.append(form);
      text.focus();
    }
  }
}

// ------------------------------------------------------------------ search

/** One search box over the advisor's scope: results replace the list while a query is typed; each opens its
 * conversation at the matching item. */
export class SearchBox {
  constructor({input, results, status, hide, onOpen, getSite}) {
    this.input = input;
    this.ul = results;
    this.status = status;
    this.hide = hide;
    this.onOpen = onOpen;
    this.getSite = getSite;
    this.timer = null;
    this.controller = null;
    this.next = null;
    this.q = "";
    input.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.run(), 250);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        this.clear();
        input.blur();
      } else if (event.key === "ArrowDown" || event.key === "Enter") {
        const first = this.ul.querySelector("button.row");
        if (first) {
          event.preventDefault();
          first.focus();
        }
      }
    });
    results.addEventListener("click", (event) => {
      const button = event.target.closest("button.row");
      if (button) this.onOpen(Number(button.dataset.id), button.dataset.seq ? Number(button.dataset.seq) : null);
      const more = event.target.closest("button.search__more");
      if (more) this.run(this.next);
    });
    results.addEventListener("keydown", (event) => {
      if (!["ArrowDown", "ArrowUp", "Escape"].includes(event.key)) return;
      const rows = Array.from(results.querySelectorAll("button.row"));
      const index = rows.indexOf(document.activeElement);
      event.preventDefault();
      if (event.key === "Escape") {
        input.focus();
        return;
      }
      const next = index + (event.key === "ArrowDown" ? 1 : -1);
      if (next < 0) input.focus();
      else rows[Math.min(next, rows.length - 1)]?.focus();
    });
  }

  focus() {
    this.input.focus();
    this.input.select();
  }

  get active() {
    return !!this.input.value.trim();
  }

  clear() {
    this.input.value = "";
    this.show(false);
  }

  show(on) {
    this.ul.hidden = !on;
    this.status.hidden = !on;
    for (const el of this.hide) el.hidden = on;
    if (!on) {
      clear(this.ul);
      this.status.textContent = "";
    }
  }

  async run(cursor = null) {
    const q = this.input.value.trim();
    if (!q) {
      this.show(false);
      return;
    }
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.show(true);
    if (!cursor) this.status.textContent = gettext("Searching…");
    let data;
    try {
      data = await productivityApi.search({q, site: this.getSite() || null, cursor}, controller.signal);
    } catch (error) {
      if (error.name === "AbortError") return;
      this.status.textContent = error.status === 400 ? gettext("Type a word to search for.") :
        gettext("The search failed. Try again.");
      return;
    }
    if (controller !== this.controller) return;
    if (!cursor) clear(this.ul);
    this.ul.querySelector(".search__more-row")?.remove();
    for (const result of data.results || []) this.ul.append(this.row(result));
    this.next = data.next || null;
    if (this.next) {
      this.ul.append(h("li", {class: "search__more-row"},
        h("button", {type: "button", class: "btn btn--small btn--ghost search__more"}, gettext("More results"))));
    }
    const n = this.ul.querySelectorAll("button.row").length;
    const count = `${n}${this.next ? "+" : ""}`;
    this.status.textContent = n ?
      format(ngettext("%(count)s conversation matches “%(query)s”.", "%(count)s conversations match “%(query)s”.",
        this.next ? n + 1 : n), {count, query: q}) :
      format(gettext("Nothing matches “%(query)s”."), {query: q});
  }

  row(result) {
    const conv = result.conversation;
    const msg = result.message;
    store.conversations.set(conv.id, store.conversations.get(conv.id) || conv);
    const name = conv.visitor?.name || anonymousName(conv.visitor?.id);
    const snippet = msg ? (msg.kind === "note" ? format(gettext("Note: %(text)s"), {text: msg.text}) : msg.text) :
      gettext("Name or variables match");
    return h("li", {class: "conv-list__item"},
      h("button", {type: "button", class: "row search__row", dataset: {id: conv.id, ...(msg ? {seq: msg.seq} : {})}},
        h("span", {class: "row__main"},
          h("span", {class: "row__top"}, h("span", {class: "row__name"}, name),
            h("span", {class: "search__site"}, conv.site?.name || ""), ...labelChips(conv)),
          h("span", {class: "row__bottom"}, h("span", {class: "row__preview"}, snippet.replace(/\s+/g, " "))))));
  }
}

// ------------------------------------------------------------------ transcripts and the keyboard overlay

/** The thread menu's transcript links, for the open conversation. */
export function transcriptLinks(menu, conversationId) {
  clear(menu);
  for (const [type, label] of [["txt", gettext("Download as text")], ["html", gettext("Download as HTML")]]) {
    const a = document.createElement("a");
    a.className = "menu__item";
    a.setAttribute("role", "menuitem");
    a.href = `${C}/${Number(conversationId)}/transcript?format=${type}`;
    a.setAttribute("download", `conversation-${Number(conversationId)}.${type}`);
    a.textContent = label;
    menu.append(a);
  }
}

export function isTyping(target) {
  return !!target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}
