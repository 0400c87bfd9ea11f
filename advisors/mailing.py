"""E-mail sent at most once per (kind, key, recipient), whatever the number of times a task runs."""
import logging

from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils import timezone

from advisors.models import Notification

logger = logging.getLogger(__name__)


def header_line(text: str) -> str:
    """A header value on one line. Subjects carry visitor data (names, variables): a CR or LF there made Django
    refuse the whole message (BadHeaderError), and a raw one would let a visitor add headers."""
    return " ".join(str(text).replace("\r", " ").replace("\n", " ").split())


class EmailFailed(Exception):
    """The mail server refused or could not be reached; the task retries."""


def email_send_once(*, kind: str, key: str, message: EmailMultiAlternatives) -> bool:
    """Send unless already sent; True when this call sent it.

    The row is locked while sending, so two runs of the same task (a retry racing a late acknowledgement)
    cannot both send. A worker killed between the SMTP answer and the commit is the one window left: the
    retry then sends again, which we prefer to an e-mail never sent.
    """
    recipient = message.to[0]
    message.subject = header_line(message.subject)  # every e-mail leaves through here: one rule for all subjects
    Notification.objects.get_or_create(kind=kind, key=key, recipient=recipient)
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(kind=kind, key=key, recipient=recipient)
        if notification.sent_at is not None:
            return False
        try:
            message.send()
        except OSError as error:  # smtplib's errors are OSErrors too
            raise EmailFailed(f"{kind} to {recipient}: {error}") from error
        notification.sent_at = timezone.now()
        notification.save(update_fields=["sent_at"])
    logger.info("sent %s e-mail %s to %s", kind, key, recipient)
    return True
