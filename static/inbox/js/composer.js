// The composer (reply, note, image) and the outbox that delivers each send exactly once: every send has
// its own client_id, kept across retries, so the API stores it once however often it travels.

import {assigningMyself} from "./alerts.js";
import {api} from "./api.js";
import {format, gettext, ngettext} from "./i18n.js";
import {store} from "./store.js";

const MAX_CHARS = 4000;
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const NOT_AN_IMAGE = gettext("This file is not an image we can send: use JPEG, PNG, GIF or WebP under 10 MB.");
const SEND_HINT = gettext("Enter to send · Shift+Enter for a new line");
// JPEG, PNG, GIF and WebP by their first bytes: a file's name and type say what it was called, not what it is.
const IMAGE_MAGIC = /^(\xff\xd8\xff|\x89PNG\r\n\x1a\n|GIF8[79]a|RIFF[^]{4}WEBP)/;

/** Whether the file is an image the server takes: its first bytes, and its size. */
export async function isSendableImage(file) {
  if (!file || file.size > MAX_IMAGE_BYTES) return false;
  try {
    const head = new Uint8Array(await file.slice(0, 12).arrayBuffer());
    return IMAGE_MAGIC.test(String.fromCharCode(...head));
  } catch {
    return false;
  }
}
const TYPING_EVERY_MS = 2000;
const MAX_ATTEMPTS = 8;

export function newClientId() {
  if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // Plain-http deployments are not a secure context: build a v4 UUID from getRandomValues.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class Outbox {
  constructor({onChange, onStored, onRefused}) {
    this.entries = [];
    this.busy = new Set();
    this.onChange = onChange;
    this.onStored = onStored;
    this.onRefused = onRefused;
    this.wakers = new Set();
  }

  add(conversation, {kind, text = "", file = null, previewUrl = null}) {
    const entry = {conversation, clientId: newClientId(), kind, text, file, previewUrl, state: "sending",
                   attempts: 0, error: null, createdAt: new Date().toISOString()};
    store.myClientIds.add(entry.clientId);
    // A reply to an unassigned conversation takes it (no news worth a sound); one to a colleague's does not, so a
    // later assignment to me by someone else still rings and notifies.
    if (kind !== "note" && !store.conversations.get(conversation)?.assigned) assigningMyself(conversation);
    this.entries.push(entry);
    this.onChange(conversation);
    this.pump(conversation);
    return entry;
  }

  pending(conversation) {
    return this.entries.filter((e) => e.conversation === conversation);
  }

  has(clientId) {
    return this.entries.some((e) => e.clientId === clientId);
  }

  /** The stored item arrived (by the socket or the POST answer): forget the pending copy. */
  settle(clientId) {
    const entry = this.entries.find((e) => e.clientId === clientId);
    if (!entry) return;
    entry.settled = true;
    this.drop(entry);
    // A delivery waiting to retry this entry stops waiting, so the messages queued behind it go now.
    if (entry.wakeUp) entry.wakeUp();
  }

  drop(entry) {
    this.entries = this.entries.filter((e) => e !== entry);
    if (entry.previewUrl) URL.revokeObjectURL(entry.previewUrl);
    this.onChange(entry.conversation);
  }

  retry(clientId) {
    const entry = this.entries.find((e) => e.clientId === clientId);
    if (!entry) return;
    entry.state = "sending";
    entry.attempts = 0;
    entry.error = null;
    this.onChange(entry.conversation);
    this.pump(entry.conversation);
  }

  discard(clientId) {
    const entry = this.entries.find((e) => e.clientId === clientId);
    if (entry) this.drop(entry);
  }

  /** The connection is back: stop waiting and try now. */
  wake() {
    for (const wake of this.wakers) wake();
    this.wakers.clear();
  }

  sleep(ms, entry) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const wakers = this.wakers;
      function done() {
        clearTimeout(timer);
        wakers.delete(done);
        entry.wakeUp = null;
        resolve();
      }
      this.wakers.add(done);
      entry.wakeUp = done;
    });
  }

  /** Send this conversation's entries one after the other, so that they keep their order. */
  async pump(conversation) {
    if (this.busy.has(conversation)) return;
    this.busy.add(conversation);
    try {
      for (;;) {
        const entry = this.entries.find((e) => e.conversation === conversation && e.state !== "failed");
        if (!entry) break;
        await this.deliver(entry);
      }
    } finally {
      this.busy.delete(conversation);
    }
  }

  async deliver(entry) {
    while (!entry.settled) {
      entry.attempts += 1;
      try {
        const data = entry.file ?
          await api.sendImage(entry.conversation, {file: entry.file, clientId: entry.clientId, kind: entry.kind}) :
          await api.send(entry.conversation, {client_id: entry.clientId, text: entry.text, kind: entry.kind});
        if (!entry.settled) {
          entry.settled = true;
          this.drop(entry);
        }
        if (data && data.message) this.onStored(data.message);
        return;
      } catch (error) {
        if (entry.settled) return;
        if (error.retryable && entry.attempts < MAX_ATTEMPTS) {
          entry.state = "retrying";
          this.onChange(entry.conversation);
          const delay = Math.min(15000, 1000 * 2 ** (entry.attempts - 1)) * (0.75 + Math.random() * 0.5);
          await this.sleep(delay, entry);
          if (entry.settled || !this.entries.includes(entry)) return;
          continue;
        }
        entry.state = "failed";
        entry.error = error.retryable ? gettext("Not sent: no connection.") :
          format(gettext("Not sent: %(reason)s"), {reason: error.message});
        entry.final = error.status === 413 || error.status === 415; // the same file is refused again: no Retry
        this.onChange(entry.conversation);
        this.onRefused && this.onRefused(entry, error);
        return;
      }
    }
  }
}

export class Composer {
  constructor({els, outbox, socket, toast, onEscape}) {
    this.els = els;
    this.outbox = outbox;
    this.socket = socket;
    this.toast = toast;
    this.onEscape = onEscape;
    this.conv = null;
    this.note = false;
    this.licensed = false;
    this.file = null;
    this.previewUrl = null;
    this.drafts = new Map();
    this.lastTypingSent = 0;
    this.confirmedFor = new Set(); // colleagues' conversations this advisor chose to reply to anyway
    this.confirming = null; // the conversation whose next send confirms replying to a colleague's conversation

    const {form, text, noteToggle, attachBtn, attachInput, attachRemove} = els;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey &&
          !event.isComposing) {
        event.preventDefault();
        this.submit();
      } else if (event.key === "Escape") {
        event.preventDefault();
        this.onEscape && this.onEscape();
      }
    });
    text.addEventListener("input", () => {
      this.autosize();
      this.typing();
      this.updateCounter();
    });
    text.addEventListener("paste", (event) => {
      const file = Array.from(event.clipboardData?.files || []).find((f) => f.type.startsWith("image/"));
      if (file) {
        event.preventDefault();
        this.attach(file);
      }
    });
    form.addEventListener("dragover", (event) => {
      if (Array.from(event.dataTransfer?.types || []).includes("Files")) event.preventDefault();
    });
    form.addEventListener("drop", (event) => {
      const file = event.dataTransfer?.files?.[0];
      if (file) {
        event.preventDefault();
        this.attach(file);
      }
    });
    noteToggle.addEventListener("click", () => this.setNote(!this.note));
    attachBtn.addEventListener("click", () => attachInput.click());
    attachInput.addEventListener("change", () => {
      if (attachInput.files && attachInput.files[0]) this.attach(attachInput.files[0]);
      attachInput.value = "";
    });
    attachRemove.addEventListener("click", () => {
      this.clearAttachment();
      this.els.text.focus();
    });
  }

  setLicensed(licensed) {
    this.licensed = !!licensed;
    this.els.noteToggle.hidden = !this.licensed;
    if (!this.licensed) this.setNote(false);
  }

  /** Another conversation opens: keep this one's draft, bring back the other's. */
  setConversation(conv) {
    if (this.conv && this.conv.id !== conv?.id) {
      this.drafts.set(this.conv.id, {text: this.els.text.value, note: this.note});
    }
    if (!this.conv || this.conv.id !== conv?.id) {
      const draft = conv ? this.drafts.get(conv.id) : null;
      this.els.text.value = draft?.text || "";
      this.setNote(!!draft?.note && this.licensed);
      this.clearAttachment();
      this.autosize();
      this.updateCounter();
    }
    this.conv = conv;
    this.update(conv);
  }

  update(conv) {
    this.conv = conv;
    this.els.form.hidden = !conv || conv.status === "closed";
    this.updatePlaceholder();
  }

  updatePlaceholder() {
    const name = this.conv?.visitor?.name;
    this.els.text.placeholder = this.note ? gettext("Write a private note for your team…") :
      name ? format(gettext("Reply to %(name)s…"), {name}) : gettext("Reply to the visitor…");
    this.els.label.textContent = this.note ? gettext("Private note") : gettext("Reply");
    this.els.send.textContent = this.note ? gettext("Add note") : gettext("Send");
  }

  setNote(on) {
    this.note = !!on && this.licensed;
    this.els.form.classList.toggle("is-note", this.note);
    this.els.noteToggle.setAttribute("aria-checked", String(this.note));
    this.updatePlaceholder();
  }

  focus() {
    this.els.text.focus();
  }

  autosize() {
    const t = this.els.text;
    t.style.height = "auto";
    t.style.height = `${Math.min(t.scrollHeight, 180)}px`;
  }

  updateCounter() {
    const left = MAX_CHARS - this.els.text.value.length;
    this.els.hint.textContent = left < 200 ?
      format(ngettext("%(count)s character left", "%(count)s characters left", left), {count: left}) : SEND_HINT;
    this.els.hint.classList.toggle("is-warning", left < 200);
  }

  typing() {
    if (!this.conv || !this.els.text.value.trim()) return;
    const now = Date.now();
    if (now - this.lastTypingSent < TYPING_EVERY_MS) return;
    this.lastTypingSent = now;
    this.socket.send({type: "typing", conversation: this.conv.id, note: this.note});
  }

  async attach(file) {
    if (!(await isSendableImage(file))) {
      this.toast(NOT_AN_IMAGE, "error");
      return;
    }
    this.clearAttachment();
    this.file = file;
    this.previewUrl = URL.createObjectURL(file);
    this.els.attachImg.src = this.previewUrl;
    this.els.attachName.textContent = file.name || gettext("Pasted image");
    this.els.attachment.hidden = false;
  }

  clearAttachment() {
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.file = null;
    this.previewUrl = null;
    this.els.attachImg.removeAttribute("src");
    this.els.attachName.textContent = "";
    this.els.attachment.hidden = true;
  }

  submit() {
    if (!this.conv || this.conv.status === "closed") return;
    const text = this.els.text.value;
    if (!text.trim() && !this.file) return;
    if (text.length > MAX_CHARS) {
      this.toast(format(gettext("Messages are limited to %(count)s characters."), {count: MAX_CHARS}), "error");
      return;
    }
    const kind = this.note ? "note" : "text";
    // Replying to a colleague's conversation is a deliberate act: the first send asks, a second one confirms (once
    // per conversation; notes are the team's own).
    const owner = this.conv.assigned;
    if (kind !== "note" && owner && owner.username !== store.me?.username && !this.confirmedFor.has(this.conv.id)) {
      if (this.confirming !== this.conv.id) {
        this.confirming = this.conv.id;
        const ask = format(gettext("%(name)s has this conversation: send again to reply anyway."), {name: owner.name});
        this.els.hint.textContent = ask;
        this.els.hint.classList.add("is-warning");
        this.toast(ask);
        return;
      }
      this.confirming = null;
      this.confirmedFor.add(this.conv.id);
    }
    if (this.file) {
      // The pending bubble keeps its own preview URL until the image is stored.
      this.outbox.add(this.conv.id, {kind, file: this.file, previewUrl: this.previewUrl});
      this.file = null;
      this.previewUrl = null;
      this.clearAttachment();
    }
    if (text.trim()) this.outbox.add(this.conv.id, {kind, text: text.replace(/\s+$/, "")});
    this.els.text.value = "";
    this.drafts.delete(this.conv.id);
    // A note is an aside: the next thing typed is a reply again, or a note meant for the team reaches the visitor
    // no more than a reply meant for the visitor ends up hidden as a note.
    this.setNote(false);
    this.autosize();
    this.updateCounter();
    this.lastTypingSent = 0;
  }
}
