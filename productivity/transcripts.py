"""A conversation as a document: plain text or HTML, for an advisor's download or the visitor's e-mail. Who sees
notes is the caller's decision (selectors.transcript_items(notes=...)); a note is always marked as one."""
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext as _

from conversations.models import Conversation, Message
from conversations.presenters import message_image_url, timestamp, visitor_name


def _who(message: Message, *, visitor_label: str) -> str:
    if message.kind == Message.Kind.NOTE:
        author = message.advisor.display_name if message.advisor else _("Bot")
        return _("Note by %(author)s") % {"author": author}
    if message.sender == Message.Sender.VISITOR:
        return visitor_label
    if message.sender == Message.Sender.ADVISOR:
        return message.advisor.display_name if message.advisor else _("Advisor")
    if message.sender == Message.Sender.BOT:
        return _("Bot")
    return "—"


def _body(message: Message) -> str:
    parts = [message.text] if message.text else []
    if url := message_image_url(message):
        label = _("image")
        parts.append(f"[{label}] {url}")
    return "\n".join(parts)


def title_of(conversation: Conversation) -> str:
    return _("Conversation #%(number)s — %(site)s") % {"number": conversation.pk, "site": conversation.site.name}


def as_text(conversation: Conversation, items: list[Message], *, visitor_label: str) -> str:
    lines = [title_of(conversation), ""]
    for message in items:
        stamp = timestamp(message.created_at)
        if message.kind == Message.Kind.EVENT:
            lines.append(f"[{stamp}] — {message.text} —")
            continue
        body = _body(message).replace("\n", "\n    ")
        lines.append(f"[{stamp}] {_who(message, visitor_label=visitor_label)}: {body}")
    return "\n".join(lines) + "\n"


def as_html(conversation: Conversation, items: list[Message], *, visitor_label: str) -> str:
    rows = []
    for message in items:
        stamp = escape(timestamp(message.created_at))
        if message.kind == Message.Kind.EVENT:
            rows.append(f'<li class="event"><time>{stamp}</time> {escape(message.text)}</li>')
            continue
        css = "note" if message.kind == Message.Kind.NOTE else message.sender
        text = escape(message.text).replace("\n", "<br>")
        image = message_image_url(message)
        label = escape(_("image"))
        picture = f'<br><a href="{escape(image)}">[{label}]</a>' if image else ""
        rows.append(f'<li class="{css}"><time>{stamp}</time> <b>{escape(_who(message, visitor_label=visitor_label))}'
                    f"</b>: {text}{picture}</li>")
    title = escape(title_of(conversation))
    language = escape(translation.get_language() or "en")
    return (f'<!doctype html><html lang="{language}"><head><meta charset="utf-8"><title>{title}</title><style>'
            "body{font:14px/1.5 system-ui,sans-serif;max-width:720px;margin:2em auto;color:#111}"
            "ul{list-style:none;padding:0}li{margin:.4em 0;padding:.3em .6em;border-radius:6px}"
            "time{color:#666;font-size:12px}.note{background:#fef3c7}.event{color:#666;text-align:center}"
            f"</style></head><body><h1>{title}</h1><ul>{''.join(rows)}</ul></body></html>\n")


def advisor_visitor_label(conversation: Conversation, *, licensed: bool) -> str:
    return visitor_name(conversation, licensed=licensed)
