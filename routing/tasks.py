"""Routing's timers and e-mails, as Celery tasks: they take ids, load rows, call routing.services; each does
nothing when the conversation moved on meanwhile, and a task run twice does its work once."""
import logging

from celery import shared_task

from advisors.mailing import EmailFailed

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def handoff_expire(conversation_id: int, waiting_since: str) -> bool:
    """handoff_timeout_s after an escalation left unassigned: the away message, if still nobody took it."""
    from routing.services import handoff_expire as expire

    return expire(conversation_id=conversation_id, waiting_since=waiting_since)


@shared_task(acks_late=True)
def idle_close_sweep() -> int:
    """Celery beat, every minute: close live conversations silent past their site's idle_close_min."""
    from routing.services import conversation_idle_close_due

    return len(conversation_idle_close_due())


@shared_task(bind=True, acks_late=True, max_retries=8)
def visitor_replies_email(self, conversation_id: int) -> int:
    """The replies a visitor who left has not seen, in one e-mail to EMAIL; returns how many replies it held."""
    from routing.emails import visitor_replies_send

    try:
        return visitor_replies_send(conversation_id=conversation_id)
    except EmailFailed as error:
        logger.warning("reply e-mail for conversation %s failed, retrying: %s", conversation_id, error)
        raise self.retry(exc=error, countdown=min(300, 5 * 2 ** self.request.retries))
