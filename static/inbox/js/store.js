// What the page knows: the advisor, the conversations seen so far (by id), the advisors who may be assigned.

import {format, gettext} from "./i18n.js";

export const store = {
  me: null,
  conversations: new Map(),
  advisors: [],
  advisorsAt: 0,
  myClientIds: new Set(), // sends from this page, to tell our own replies from a colleague's
  assigningMyself: new Map(), // conversation id -> when this page took it, assigned it to me or replied
};

export function isMine(conv) {
  return !!conv.assigned && !!store.me && conv.assigned.username === store.me.username;
}

/** The colour a site was given in the admin (`#rrggbb`), or null: the caller falls back to a hue of its key. */
export function siteColor(key) {
  const site = (store.me?.sites || []).find((s) => s.key === key);
  return site && /^#[0-9a-f]{6}$/i.test(site.color || "") ? site.color : null;
}

export function isWaiting(conv) {
  return !!conv && conv.status === "live" && !conv.assigned;
}

/** Last activity, for ordering like the API: newest first, then id. */
export function activity(conv) {
  const ts = conv.last_message?.created_at || conv.updated_at || conv.created_at;
  const t = ts ? Date.parse(ts) : 0;
  return Number.isNaN(t) ? 0 : t;
}

export function compareConversations(a, b) {
  return activity(b) - activity(a) || b.id - a.id;
}

const BOX_STATUS = {live: "live", closed: "closed", chatbot: "bot"};

/** Whether a conversation belongs in the list for this view (site tab, box, filter, advisor). */
export function matchesView(conv, view) {
  if (view.site && conv.site?.key !== view.site) return false;
  if (conv.status !== BOX_STATUS[view.box]) return false;
  if (view.label && !(conv.labels || []).some((l) => l.name === view.label)) return false;
  if (view.advisor) return conv.assigned?.username === view.advisor;
  switch (view.filter) {
    case "unassigned":
      return !conv.assigned;
    case "unread":
      return !!conv.unread;
    case "mine":
      return isMine(conv);
    default:
      return true;
  }
}

/** The one-line preview of a conversation's last item. */
export function previewOf(conv) {
  const m = conv.last_message;
  if (!m) return {who: "", text: gettext("No messages yet")};
  let who = "";
  if (m.kind === "note") who = gettext("Note: ");
  else if (m.kind === "event" || m.sender === "system") who = "";
  else if (m.sender === "bot") who = gettext("Bot: ");
  else if (m.sender === "advisor") {
    const mine = (m.client_id && store.myClientIds.has(m.client_id))
      || (store.me && m.advisor && m.advisor.name === store.me.name);
    who = mine ? gettext("You: ") : format(gettext("%(name)s: "), {name: m.advisor?.name || gettext("Advisor")});
  }
  let text = m.text || "";
  if (m.kind === "image" || m.image_url) text = text ? format(gettext("Image · %(text)s"), {text}) : gettext("Image");
  return {who, text: text.replace(/\s+/g, " ").trim(), event: m.kind === "event"};
}
