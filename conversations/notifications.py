"""Who gets an e-mail when a visitor asks for a human, and what it says."""
import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from advisors.mailing import email_send_once, header_line
from advisors.models import Advisor
from conversations.models import Conversation, Message
from conversations.presenters import timestamp, visitor_name

logger = logging.getLogger(__name__)


def escalation_recipients(conversation: Conversation) -> list[Advisor]:
    """The auto-assigned advisor if the flow named one; otherwise every licensed advisor of the site who
    keeps the e-mail preference."""
    if conversation.assigned_id is not None:
        return [conversation.assigned] if conversation.assigned.email else []
    return list(Advisor.objects.select_related("user")
                .filter(sites=conversation.site_id, licensed=True, email_on_escalation=True)
                .exclude(user__email="").order_by("pk"))


def conversation_link(conversation: Conversation) -> str:
    return f"{settings.PUBLIC_URL}/inbox/#conversation-{conversation.pk}"


def escalation_emails_send(*, conversation_id: int, waiting_since: str, reminder: bool = False) -> int:
    """Send the escalation (or reminder) e-mails of one escalation; EmailFailed if the mail server fails."""
    conversation = (Conversation.objects.select_related("site__chatbot", "visitor", "assigned__user")
                    .filter(pk=conversation_id).first())
    if conversation is None or conversation.status != Conversation.Status.LIVE:
        return 0
    if timestamp(conversation.waiting_since) != waiting_since:
        return 0  # taken, answered, or escalated again since: that later escalation has its own e-mails
    if reminder and conversation.assigned_id is not None:
        return 0
    recent = list(conversation.messages.filter(kind__in=[Message.Kind.TEXT, Message.Kind.NOTE])
                  .order_by("-seq").values("kind", "sender", "text")[:50])
    last_visitor = next((m["text"] for m in recent if m["sender"] == Message.Sender.VISITOR), "")
    note = next((m["text"] for m in recent if m["kind"] == Message.Kind.NOTE), "")
    kind = "reminder" if reminder else "escalation"
    sent = 0
    for advisor in escalation_recipients(conversation):
        licensed = advisor.licensed
        context = {
            "site": conversation.site.name,
            "visitor": visitor_name(conversation, licensed=licensed),
            "note": note if licensed else "",
            "last_message": last_visitor,
            "link": conversation_link(conversation),
            "advisor": advisor.display_name,
            "reminder": reminder,
        }
        with translation.override(advisor.language or settings.LANGUAGE_CODE):  # the advisor's, not the worker's
            subject = header_line(_("Still waiting: %(visitor)s on %(site)s") % context if reminder
                                  else _("[%(site)s] %(visitor)s asks for a human") % context)
            message = EmailMultiAlternatives(subject=subject, to=[advisor.email],
                                             body=render_to_string("conversations/escalation_email.txt", context))
            message.attach_alternative(render_to_string("conversations/escalation_email.html", context), "text/html")
        if email_send_once(kind=kind, key=f"conversation:{conversation.pk}:{waiting_since}", message=message):
            sent += 1
    return sent
