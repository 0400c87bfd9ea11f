// When the advisor's access changes while the inbox is open (issue 14, point 7): the socket's `access_changed`
// frame, or a 4401 close, makes the page read /api/inbox/me again. What changed is applied at once (rows and
// badges of a removed site go, an added site's conversations come, names, variables and notes follow the
// license) and said in plain words; "signed out" only when /api/inbox/me says so.

import {format, gettext, ngettext} from "./i18n.js";
import {store} from "./store.js";

/** What differs between two answers of /api/inbox/me. */
export function accessChanges(before, after) {
  const sites = (me) => new Map((me?.sites || []).map((s) => [s.key, s.name || s.key]));
  const was = sites(before);
  const now = sites(after);
  const removed = [...was].filter(([key]) => !now.has(key));
  const added = [...now].filter(([key]) => !was.has(key));
  const change = {
    removedKeys: removed.map(([key]) => key),
    removedNames: removed.map(([, name]) => name),
    addedNames: added.map(([, name]) => name),
    license: !!before?.licensed === !!after.licensed ? null : (after.licensed ? "granted" : "revoked"),
    chatbot: !!before?.sees_chatbot === !!after.sees_chatbot ? null : (after.sees_chatbot ? "shown" : "hidden"),
  };
  change.any = !!(change.removedKeys.length || change.addedNames.length || change.license || change.chatbot);
  return change;
}

function names(list) {
  if (list.length < 2) return list.join("");
  return format(gettext("%(names)s and %(last)s"), {names: list.slice(0, -1).join(", "), last: list[list.length - 1]});
}

/** The sentence the advisor reads. */
export function accessMessage(change) {
  const said = [];
  if (change.license === "revoked") {
    said.push(gettext("Your Livechat Premium license was removed: visitors now show as anonymous, and variables " +
      "and notes are hidden."));
  } else if (change.license === "granted") {
    said.push(gettext("You now have a Livechat Premium license: visitor names, variables and notes are shown."));
  }
  if (change.removedNames.length) {
    said.push(format(ngettext("You no longer have access to %(sites)s: its conversations left your inbox.",
      "You no longer have access to %(sites)s: their conversations left your inbox.", change.removedNames.length),
    {sites: names(change.removedNames)}));
  }
  if (change.addedNames.length) {
    said.push(format(ngettext("You now have access to %(sites)s: its conversations are in your inbox.",
      "You now have access to %(sites)s: their conversations are in your inbox.", change.addedNames.length),
    {sites: names(change.addedNames)}));
  }
  if (change.chatbot === "shown") said.push(gettext("The Chatbot box is now shown to you."));
  if (change.chatbot === "hidden") said.push(gettext("The Chatbot box is no longer shown to you."));
  return said.join(" ");
}

export class AccessWatch {
  /**
   * @param {object} hooks
   * @param {(change: object, me: object) => void} hooks.apply  the page follows the new access
   */
  constructor({apply}) {
    this.apply = apply;
    this.chain = Promise.resolve();
  }

  /** Read /api/inbox/me again (one read at a time, in order) and apply what changed. Resolves to "ok",
   * "signed_out" (401), "not_advisor" (403) or "unreachable". */
  check() {
    const run = this.chain.then(() => this.run());
    this.chain = run.catch(() => {});
    return run;
  }

  async run() {
    let response;
    try {
      // Not api.me(): a 401 here is reported to the page, which says so, instead of leaving for the login page.
      response = await fetch("/api/inbox/me", {headers: {Accept: "application/json"}, credentials: "same-origin",
                                               cache: "no-store"});
    } catch {
      return "unreachable";
    }
    if (response.status === 401) return "signed_out";
    if (response.status === 403) return "not_advisor";
    if (!response.ok) return "unreachable";
    let me;
    try {
      me = await response.json();
    } catch {
      return "unreachable";
    }
    const change = accessChanges(store.me, me);
    store.me = {...store.me, ...me};
    if (change.any) this.apply(change, store.me);
    return "ok";
  }
}

/** The page's part: drop what was shown under the old access, load the list and the open conversation again. */
export function followAccess(change, {list, pane, countsByScope, refreshCounts}) {
  const openConv = pane.id ? store.conversations.get(pane.id) : null;
  for (const [id, conv] of store.conversations) {
    // A license change renames every visitor and changes what the items are: nothing held is still right.
    if (change.license || change.removedKeys.includes(conv.site?.key)) {
      list.remove(id); // its row first: the list orders rows by what the store holds
      store.conversations.delete(id);
    }
  }
  countsByScope.clear();
  list.reload().catch(() => {});
  refreshCounts();
  if (openConv && change.removedKeys.includes(openConv.site?.key)) pane.closeView();
  else if (pane.id && change.license) pane.reload();
}
