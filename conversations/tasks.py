"""E-mails to advisors, sent by Celery so a slow or broken mail server never slows or breaks a chat.

Tasks take ids and the escalation's `waiting_since` (which names one escalation of a conversation), load
the rows, and send through advisors.mailing, which records each e-mail so a task run twice sends it once."""
import logging

from celery import shared_task

from advisors.mailing import EmailFailed

logger = logging.getLogger(__name__)


def _retry_delay(retries: int) -> int:
    return min(300, 5 * 2 ** retries)


@shared_task(bind=True, acks_late=True, max_retries=8)
def escalation_notify(self, conversation_id: int, waiting_since: str) -> int:
    """E-mail the advisors who should act on a conversation a visitor escalated; returns how many were sent."""
    from conversations.notifications import escalation_emails_send

    try:
        return escalation_emails_send(conversation_id=conversation_id, waiting_since=waiting_since)
    except EmailFailed as error:
        logger.warning("escalation e-mail for conversation %s failed, retrying: %s", conversation_id, error)
        raise self.retry(exc=error, countdown=_retry_delay(self.request.retries))


@shared_task(bind=True, acks_late=True, max_retries=8)
def escalation_remind(self, conversation_id: int, waiting_since: str) -> int:
    """Runs after the reminder delay: sends only if that same escalation is still live and unassigned."""
    from conversations.notifications import escalation_emails_send

    try:
        return escalation_emails_send(conversation_id=conversation_id, waiting_since=waiting_since, reminder=True)
    except EmailFailed as error:
        logger.warning("reminder for conversation %s failed, retrying: %s", conversation_id, error)
        raise self.retry(exc=error, countdown=_retry_delay(self.request.retries))
