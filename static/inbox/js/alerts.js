// Sound on visitor messages and browser notifications on escalations.

import {format, gettext} from "./i18n.js";
import {isMine, isWaiting, store} from "./store.js";

const DISMISSED_KEY = "inbox.notifications.dismissed";
const SELF_ASSIGN_MS = 15000; // how long an action of this page explains an assignment to me
const COALESCE_MS = 300; // one event reaches us as a burst of frames (items, then the status): one sound

/** This page is about to give this conversation to its advisor (take, assign to me, a reply that assigns):
 * the frame that follows is no news worth a sound. */
export function assigningMyself(id) {
  store.assigningMyself.set(id, Date.now());
}

// Not forgotten at the first frame: the take's frames come from more than one group, and one built before the take
// can arrive between them (not mine again, then mine): each "became mine" within the window is this page's doing.
function assignedByMe(id) {
  const at = store.assigningMyself.get(id);
  if (at === undefined) return false;
  if (Date.now() - at < SELF_ASSIGN_MS) return true;
  store.assigningMyself.delete(id);
  return false;
}

const announced = new Set(); // "id@waiting_since" of the escalations already announced

/** A visitor newly waiting for a human. Once per escalation, whatever order frames arrive in: a frame built
 * before a take can arrive after its answer and would otherwise look like the same escalation again. */
export function isNewEscalation(prev, next) {
  if (!isWaiting(next) || isWaiting(prev)) return false;
  const key = `${next.id}@${next.waiting_since}`;
  if (announced.has(key)) return false;
  announced.add(key);
  if (announced.size > 2000) announced.delete(announced.values().next().value);
  return true;
}

/** The sound rule for a conversation frame, besides a new escalation: a conversation someone else gave me. */
export function ringsOnChange(prev, next) {
  if (isMine(next) && !(prev && isMine(prev))) return !assignedByMe(next.id);
  return false;
}

/** The sound rule for a new item: a visitor writing in a live conversation that is mine or nobody's;
 * a colleague's conversations and the bot's are theirs to hear. */
export function ringsOnMessage(msg, conv) {
  if (msg.sender !== "visitor" || msg.kind === "note" || msg.kind === "event") return false;
  return !!conv && conv.status === "live" && (!conv.assigned || isMine(conv));
}

export class Alerts {
  constructor({soundUrl, iconUrl, banner, enableButton, dismissButton, soundButton, onSoundChange, onOpen}) {
    this.soundUrl = soundUrl;
    this.iconUrl = iconUrl;
    this.banner = banner;
    this.soundButton = soundButton;
    this.onSoundChange = onSoundChange;
    this.onOpen = onOpen;
    this.sound = true;
    this.audio = null;
    this.rangAt = new Map(); // conversation id -> last sound, to coalesce a burst
    enableButton.addEventListener("click", () => this.askPermission());
    dismissButton.addEventListener("click", () => {
      try {
        localStorage.setItem(DISMISSED_KEY, "1");
      } catch {
        /* private mode: the banner comes back next time, which is fine */
      }
      this.banner.hidden = true;
    });
    soundButton.addEventListener("click", () => this.toggleSound());
  }

  get supported() {
    return "Notification" in window;
  }

  /** Offer notifications with a small banner, never a prompt on load; only while the choice is open. */
  showBannerIfUseful() {
    let dismissed = false;
    try {
      dismissed = localStorage.getItem(DISMISSED_KEY) === "1";
    } catch {
      dismissed = false;
    }
    this.banner.hidden = !(this.supported && Notification.permission === "default" && !dismissed);
  }

  async askPermission() {
    if (!this.supported) return;
    try {
      await Notification.requestPermission();
    } finally {
      this.banner.hidden = true;
    }
  }

  setSound(on) {
    this.sound = !!on;
    this.soundButton.setAttribute("aria-pressed", String(this.sound));
    this.soundButton.title = this.sound ? gettext("Sound on: click to mute") : gettext("Sound off: click to turn on");
    this.soundButton.classList.toggle("is-muted", !this.sound);
  }

  toggleSound() {
    this.setSound(!this.sound);
    this.onSoundChange && this.onSoundChange(this.sound);
  }

  ding(conversationId) {
    if (!this.sound) return;
    const now = Date.now();
    if (now - (this.rangAt.get(conversationId) || 0) < COALESCE_MS) return;
    this.rangAt.set(conversationId, now);
    if (this.rangAt.size > 500) this.rangAt.delete(this.rangAt.keys().next().value);
    if (!this.audio) {
      this.audio = new Audio(this.soundUrl);
      this.audio.preload = "auto";
      this.audio.volume = 0.6;
    }
    try {
      this.audio.currentTime = 0;
    } catch {
      /* not loaded yet */
    }
    const played = this.audio.play();
    // Browsers refuse sound before the first user gesture on the page; that is not an error worth showing.
    if (played && played.catch) played.catch(() => {});
  }

  /** A visitor asks for a human; `assigned`: a conversation was given to me ("assigned to you"). */
  notifyEscalation(conversation, {assigned = false} = {}) {
    if (!this.supported || Notification.permission !== "granted") return;
    const name = conversation.visitor?.name || gettext("A visitor");
    const site = conversation.site?.name;
    let notification;
    try {
      const title = assigned ? format(gettext("%(name)s was assigned to you"), {name}) :
        format(gettext("%(name)s asks for a human"), {name});
      notification = new Notification(title, {
        body: site ? format(gettext("On %(site)s. Open the inbox to answer."), {site}) :
          gettext("Open the inbox to answer."),
        tag: `conversation-${conversation.id}`,
        icon: this.iconUrl,
      });
    } catch {
      return; // e.g. a platform that only allows notifications from a service worker
    }
    notification.onclick = () => {
      window.focus();
      this.onOpen && this.onOpen(conversation.id);
      notification.close();
    };
  }
}
