import logging

from celery import shared_task
from django.core.mail import EmailMultiAlternatives

from advisors.mailing import EmailFailed, email_send_once
from advisors.models import Invitation

logger = logging.getLogger(__name__)


def _invitation_scope(invitation: Invitation) -> str:
    """" on Shop and Blog, with a Livechat Premium license": what the invitation gives, as its e-mail says it."""
    sites = [site.name for site in invitation.sites.order_by("name")]
    scope = f" on {', '.join(sites[:-1])} and {sites[-1]}" if len(sites) > 1 else (f" on {sites[0]}" if sites else "")
    return scope + (", with a Livechat Premium license" if invitation.licensed else "")


@shared_task(bind=True, acks_late=True, max_retries=8)
def invitation_send(self, invitation_id: int) -> bool:
    from advisors.services import invitation_expired, invitation_url

    invitation = Invitation.objects.select_related("account").filter(pk=invitation_id).first()
    if invitation is None or invitation.accepted_at is not None or invitation_expired(invitation):
        return False  # used or expired: its link would open nothing
    message = EmailMultiAlternatives(
        subject=f"You are invited to the {invitation.account.name} inbox",
        body=(f"Hello,\n\nYou are invited to answer visitors of {invitation.account.name}"
              f"{_invitation_scope(invitation)}.\n"
              f"Choose your password here (the link works once, for 7 days):\n{invitation_url(invitation)}\n"),
        to=[invitation.email],
    )
    try:
        return email_send_once(kind="invitation", key=f"invitation:{invitation.pk}", message=message)
    except EmailFailed as error:
        logger.warning("invitation e-mail %s failed, retrying: %s", invitation_id, error)
        raise self.retry(exc=error, countdown=min(300, 5 * 2 ** self.request.retries))
