import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import translation
from django.utils.translation import gettext as _

from advisors.mailing import EmailFailed, email_send_once
from advisors.models import Invitation

logger = logging.getLogger(__name__)


def _invitation_sentence(invitation: Invitation) -> str:
    """"You are invited to answer visitors of Acme on Shop and Blog, with a Livechat Premium license.": what the
    invitation gives, as its e-mail says it, in the active language."""
    names = [site.name for site in invitation.sites.order_by("name")]
    values = {"account": invitation.account.name,
              "sites": _("%(sites)s and %(last)s") % {"sites": ", ".join(names[:-1]), "last": names[-1]}
              if len(names) > 1 else "".join(names)}
    if not names:
        sentence = (_("You are invited to answer visitors of %(account)s, with a Livechat Premium license.")
                    if invitation.licensed else _("You are invited to answer visitors of %(account)s."))
    else:
        sentence = (_("You are invited to answer visitors of %(account)s on %(sites)s, with a Livechat Premium "
                      "license.")
                    if invitation.licensed else _("You are invited to answer visitors of %(account)s on %(sites)s."))
    return sentence % values


@shared_task(bind=True, acks_late=True, max_retries=8)
def invitation_send(self, invitation_id: int, language: str | None = None) -> bool:
    """`language`: the inviter's, when the invitation was made (the worker has no request to ask)."""
    from advisors.services import invitation_expired, invitation_url

    invitation = Invitation.objects.select_related("account").filter(pk=invitation_id).first()
    if invitation is None or invitation.accepted_at is not None or invitation_expired(invitation):
        return False  # used or expired: its link would open nothing
    known = dict(settings.LANGUAGES)
    with translation.override(language if language in known else settings.LANGUAGE_CODE):
        message = EmailMultiAlternatives(
            subject=_("You are invited to the %(account)s inbox") % {"account": invitation.account.name},
            body="\n".join([_("Hello,"), "", _invitation_sentence(invitation),
                            _("Choose your password here (the link works once, for 7 days):"),
                            invitation_url(invitation), ""]),
            to=[invitation.email],
        )
    try:
        return email_send_once(kind="invitation", key=f"invitation:{invitation.pk}", message=message)
    except EmailFailed as error:
        logger.warning("invitation e-mail %s failed, retrying: %s", invitation_id, error)
        raise self.retry(exc=error, countdown=min(300, 5 * 2 ** self.request.retries))
