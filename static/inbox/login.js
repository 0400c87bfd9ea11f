// The login page's only script. A link such as /inbox/#conversation-55 (the escalation e-mail's) reaches
// this page with its fragment still in the address bar, but a fragment is never sent to the server, so the
// `next` the server filled in has lost it: put it back, or the advisor lands on an empty inbox.
const next = document.querySelector('.auth-form input[name="next"]');
const fragment = location.hash;
if (next && fragment.length > 1 && next.value.startsWith("/") && !next.value.includes("#")) {
  next.value += fragment;
}
