"""The e-mail a visitor who left gets with the advisors' replies (never a note), plain text and HTML."""
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from advisors.mailing import email_send_once
from advisors.models import Notification
from conversations.models import Conversation, Message
from conversations.presenters import message_image_url
from routing.services import visitor_left

KIND = "visitor_replies"


def _key(conversation_id: int, upto: int) -> str:
    return f"conversation:{conversation_id}:upto:{upto}"


def _sent_upto(conversation_id: int) -> int:
    """The last reply already e-mailed for this conversation (its seq), 0 if none."""
    keys = Notification.objects.filter(kind=KIND, key__startswith=f"conversation:{conversation_id}:upto:",
                                       sent_at__isnull=False).values_list("key", flat=True)
    return max((int(key.rsplit(":", 1)[1]) for key in keys), default=0)


def visitor_replies_send(*, conversation_id: int) -> int:
    conversation = Conversation.objects.select_related("site", "visitor").filter(pk=conversation_id).first()
    if conversation is None:
        return 0
    visitor = conversation.visitor
    address = visitor.variables.get("EMAIL")
    if not address or not visitor_left(visitor):
        return 0  # back on the page meanwhile: the widget shows the replies
    replies = list(conversation.messages.select_related("advisor")
                   .filter(sender=Message.Sender.ADVISOR, kind__in=[Message.Kind.TEXT, Message.Kind.IMAGE],
                           seq__gt=_sent_upto(conversation_id)).order_by("seq")[:100])
    if not replies:
        return 0
    context = {
        "site": conversation.site.name,
        "replies": [{"name": m.advisor.display_name if m.advisor else conversation.site.name, "text": m.text,
                     "image_url": message_image_url(m) if m.kind == Message.Kind.IMAGE else None} for m in replies],
        "page": visitor.page or "",
    }
    with translation.override(visitor.language):  # the widget's language, not the worker's
        context["LANGUAGE_CODE"] = visitor.language
        message = EmailMultiAlternatives(subject=_("[%(site)s] A reply to your message") % context, to=[address],
                                         body=render_to_string("routing/replies_email.txt", context))
        message.attach_alternative(render_to_string("routing/replies_email.html", context), "text/html")
    email_send_once(kind=KIND, key=_key(conversation_id, replies[-1].seq), message=message)
    return len(replies)
