"""The visitor's transcript e-mail, sent by Celery (advisors.mailing records it: a task run twice sends once)."""
import logging

from celery import shared_task

from advisors.mailing import EmailFailed

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=8)
def transcript_email(self, request_id: int) -> bool:
    from productivity.mail import transcript_email_send

    try:
        return transcript_email_send(request_id=request_id)
    except EmailFailed as error:
        logger.warning("transcript e-mail %s failed, retrying: %s", request_id, error)
        raise self.retry(exc=error, countdown=min(300, 5 * 2 ** self.request.retries))
