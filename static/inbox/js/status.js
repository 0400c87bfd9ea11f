// The advisor's own status beside the avatar (routing, CONTRACT section 7): online takes new conversations
// (round robin, a flow's named assignee), away does not. Offline is not chosen: it is having no inbox open.

import {api} from "./api.js";
import {gettext} from "./i18n.js";

const NEXT = {online: "away", away: "online"};

export function statusChooser(button, me, {onError} = {}) {
  let status = me.status === "away" ? "away" : "online";
  const render = () => {
    button.dataset.status = status;
    button.setAttribute("aria-pressed", String(status === "away"));
    button.title = status === "away" ?
      gettext("You are away: no new conversation is assigned to you. Click to be online.") :
      gettext("You are online: new conversations may be assigned to you. Click to be away.");
    button.querySelector(".rail__status-label").textContent = status === "away" ? gettext("Away") : gettext("Online");
  };
  button.addEventListener("click", async () => {
    const wanted = NEXT[status];
    button.disabled = true;
    try {
      const answer = await api.updateMe({status: wanted});
      status = answer?.status === "away" ? "away" : "online";
    } catch {
      onError?.(gettext("Your status could not be changed; try again."));
    } finally {
      button.disabled = false;
      render();
    }
  });
  render();
}
