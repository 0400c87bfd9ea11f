// Small screens (issue 14, point 8). Under 720 px the page shows the list or the open conversation, with a back
// button between them (body.is-thread-open); under 1200 px the visitor's details are a drawer over the
// conversation, closed when a conversation opens, instead of a column (inbox.css has the layouts).

export const PHONE = window.matchMedia("(max-width: 720px)");
export const NARROW = window.matchMedia("(max-width: 1200px)");

/** Follow which of the list and the conversation shows, and where the details go when the width changes. */
export function watchLayout({pane, list, view, back}) {
  const sync = () => {
    const open = !view.hidden;
    const was = document.body.classList.contains("is-thread-open");
    document.body.classList.toggle("is-thread-open", open);
    // On a phone the browser's back button (Android's too) goes from the conversation to the list, not away.
    if (open && !was && PHONE.matches && !history.state?.inboxThread) history.pushState({inboxThread: true}, "");
  };
  new MutationObserver(sync).observe(view, {attributes: true, attributeFilter: ["hidden"]});
  sync();
  const toList = () => {
    const id = pane.id;
    pane.closeView();
    sync(); // the list shows again before its row takes the focus
    list.focusRow(id);
  };
  back.addEventListener("click", () => {
    if (history.state?.inboxThread) history.back(); // its popstate shows the list
    else toList();
  });
  window.addEventListener("popstate", () => {
    if (!view.hidden && !history.state?.inboxThread) toList();
  });
  NARROW.addEventListener("change", () => {
    if (pane.conv) pane.renderPanel(pane.conv);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && NARROW.matches && pane.drawerOpen && !pane.els.panel.hidden) pane.setPanel(false);
  });
}
