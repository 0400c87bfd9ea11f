"""Builds and sends the visitor's transcript e-mail: the items the visitor may see (never a note), up to the moment
of the request."""
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import translation
from django.utils.translation import gettext as _

from advisors.mailing import email_send_once
from conversations.models import Message
from productivity import transcripts
from productivity.models import TranscriptRequest


def transcript_email_send(*, request_id: int) -> bool:
    request = (TranscriptRequest.objects.select_related("conversation__site", "conversation__visitor")
               .filter(pk=request_id).first())
    if request is None:
        return False
    conversation = request.conversation
    items = list(Message.objects.filter(conversation=conversation, seq__lte=request.upto_seq)
                 .exclude(kind=Message.Kind.NOTE).select_related("advisor__user").order_by("seq"))
    with translation.override(conversation.visitor.language):  # the widget's language, not the worker's
        you = _("You")
        message = EmailMultiAlternatives(
            subject=_("Your conversation with %(site)s") % {"site": conversation.site.name},
            body=transcripts.as_text(conversation, items, visitor_label=you),
            from_email=settings.DEFAULT_FROM_EMAIL, to=[request.email])
        message.attach_alternative(transcripts.as_html(conversation, items, visitor_label=you), "text/html")
    # The key names the conversation: erasing it forgets this record of the visitor's address too.
    sent = email_send_once(kind="transcript", key=f"conversation:{conversation.pk}:transcript:{request.pk}",
                           message=message)
    if sent:
        from productivity.services import transcript_mark_sent

        transcript_mark_sent(request=request)
    return sent
