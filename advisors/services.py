"""Writes for accounts, advisors, sites and invitations. Admin actions and views call these."""
import hmac
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from advisors import selectors
from advisors.models import Account, Advisor, Invitation, Site
from livechat import realtime

INVITATION_MAX_AGE = timedelta(days=7)


class LicenseQuotaExceeded(Exception):
    def __init__(self, account: Account):
        super().__init__(
            _("All %(quota)s Livechat Premium licenses of %(account)s are granted; revoke one or raise the quota "
              "first.") % {"quota": account.license_quota, "account": account.name}
        )


class QuotaBelowGranted(Exception):
    def __init__(self, account: Account, granted: int):
        self.granted = granted
        super().__init__(
            ngettext("%(account)s has granted %(granted)s Livechat Premium license: the quota cannot be lower. "
                     "Revoke licenses first.",
                     "%(account)s has granted %(granted)s Livechat Premium licenses: the quota cannot be lower. "
                     "Revoke licenses first.", granted) % {"account": account.name, "granted": granted}
        )


class QuotaNotYours(PermissionDenied):
    def __init__(self):
        super().__init__(_("The license quota is set by the platform operator."))


class InvitationInvalid(Exception):
    pass


def _signal_advisor_changed(advisor: Advisor) -> None:
    """Open inbox sockets of this advisor re-read the license and site scope (or close when revoked)."""
    realtime.send_on_commit(realtime.advisor_group(advisor.pk), {"type": "advisor.changed"})


def _audit(action: str, advisor: Advisor, by, **details) -> None:
    from integrations.audit import audit_record

    audit_record(action=action, target=f"advisor {advisor.username}", actor=by, details=details)


def license_grant(*, advisor: Advisor, by=None) -> Advisor:
    """Grant the Livechat Premium license; refused past the account's quota, also when grants race.

    The account row is locked first, so two concurrent grants count the licenses one after the other. `by`: the
    user who granted it, for the audit trail (None: a process, e.g. seed_demo).
    """
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=advisor.account_id)
        advisor = Advisor.objects.select_for_update().get(pk=advisor.pk)
        if advisor.licensed:
            return advisor
        if selectors.licenses_left(account=account) == 0:
            raise LicenseQuotaExceeded(account)
        advisor.licensed = True
        advisor.save(update_fields=["licensed"])
        _signal_advisor_changed(advisor)
        _audit("license.granted", advisor, by)
    return advisor


def license_revoke(*, advisor: Advisor, by=None) -> Advisor:
    with transaction.atomic():
        advisor = Advisor.objects.select_for_update().get(pk=advisor.pk)
        if not advisor.licensed:
            return advisor
        advisor.licensed = False
        advisor.save(update_fields=["licensed"])
        _signal_advisor_changed(advisor)
        _audit("license.revoked", advisor, by)
    return advisor


def license_set(*, advisor: Advisor, licensed: bool, by=None) -> Advisor:
    return license_grant(advisor=advisor, by=by) if licensed else license_revoke(advisor=advisor, by=by)


def advisor_scope_changed(*, advisor: Advisor, by=None) -> None:
    """Call after the advisor's sites or chatbot visibility changed, inside the writing transaction. `by`: the
    user who changed it, for the audit trail."""
    _signal_advisor_changed(advisor)
    _audit("scope.changed", advisor, by, sites=sorted(advisor.sites.values_list("key", flat=True)),
           sees_chatbot=advisor.sees_chatbot)


def advisor_update_preferences(*, advisor: Advisor, name: str | None = None,
                               email_on_escalation: bool | None = None, sound: bool | None = None,
                               language: str | None = None) -> Advisor:
    fields = []
    if language is not None:
        if language and language not in dict(settings.LANGUAGES):
            raise ValueError(f"Unknown language {language!r}.")
        advisor.language = language
        fields.append("language")
    if name is not None:
        advisor.display_name = name
        fields.append("display_name")
    if email_on_escalation is not None:
        advisor.email_on_escalation = email_on_escalation
        fields.append("email_on_escalation")
    if sound is not None:
        advisor.sound = sound
        fields.append("sound")
    if fields:
        advisor.save(update_fields=fields)
        if "language" in fields:
            user_id = advisor.user_id
            transaction.on_commit(lambda: selectors.advisor_language_forget(user_id))
    return advisor


def advisor_record_activity(*, advisor_id: int, messages: int = 0) -> None:
    """Last activity and message count are kept by the system, in one UPDATE without a read."""
    changes = {"last_activity_at": timezone.now()}
    if messages:
        changes["message_count"] = F("message_count") + messages
    Advisor.objects.filter(pk=advisor_id).update(**changes)


def account_license_quota_set(*, account: Account, quota: int, by) -> Account:
    """Set the license quota: only the platform operator (`selectors.quota_editable_by`), never below the licenses
    granted. The account row is locked as `license_grant` locks it, so a grant racing this change is counted: one
    of the two waits for the other and sees its result."""
    if quota < 0:
        raise ValueError("a quota is a count")
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account.pk)
        if not selectors.quota_editable_by(user=by, account=account):
            raise QuotaNotYours()
        granted = selectors.licenses_granted(account=account)
        if quota < granted:
            raise QuotaBelowGranted(account, granted)
        if account.license_quota != quota:
            account.license_quota = quota
            account.save(update_fields=["license_quota"])
    return account


def advisor_create(*, account: Account, username: str, email: str, display_name: str, password: str | None,
                   sites: list[Site] = (), sees_chatbot: bool = False, staff: bool = False) -> Advisor:
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model.objects.create_user(username=username, email=email, password=password,
                                              is_staff=staff, is_superuser=staff)
        advisor = Advisor.objects.create(user=user, account=account, display_name=display_name,
                                         sees_chatbot=sees_chatbot)
        advisor.sites.set(sites)
    return advisor


# ------------------------------------------------------------------------------ invitations


@dataclass(frozen=True)
class InvitationLink:
    invitation: Invitation
    url: str


def invitation_token(invitation: Invitation) -> str:
    """`<id>.<the invitation's own random secret>`. Not signed with SECRET_KEY: whoever knows that key (a published
    default, a leaked .env) still cannot make a link, since the secret exists only on the row and in the e-mail."""
    return f"{invitation.pk}.{invitation.secret}"


def invitation_create(*, account: Account, email: str, invited_by=None, display_name: str = "",
                      sites: list[Site] = (), licensed: bool = False) -> InvitationLink:
    """Invite someone by e-mail, with the sites they will work on and, when `licensed`, a license granted as they
    accept (refused now if none is left; granted then only if one still is: the quota holds at acceptance)."""
    from advisors.tasks import invitation_send

    if any(site.account_id != account.pk for site in sites):
        raise ValueError("an invitation names sites of its own account only")
    with transaction.atomic():
        if licensed and selectors.licenses_left(account=account) == 0:
            raise LicenseQuotaExceeded(account)
        invitation = Invitation.objects.create(account=account, email=email, invited_by=invited_by,
                                               display_name=display_name, licensed=licensed)
        invitation.sites.set(sites)
        language = translation.get_language()  # the inviter's: the e-mail is worded in it
        transaction.on_commit(lambda: invitation_send.delay(invitation.pk, language=language))
    return InvitationLink(invitation, invitation_url(invitation))


def invitation_url(invitation: Invitation) -> str:
    return f"{settings.PUBLIC_URL}/invitations/{invitation_token(invitation)}"


def invitation_from_token(token: str) -> Invitation:
    """The pending invitation a link names; InvitationInvalid if forged, expired or already used. Nothing but "not
    valid" is said until the secret matches, and the expiry counts from the row's creation, not from the link."""
    pk, _dot, secret = token.partition(".")
    invitation = None
    if pk.isascii() and pk.isdigit() and secret:
        invitation = Invitation.objects.filter(pk=int(pk)).select_related("account").first()
    # Compared in constant time, so the answer's timing tells nothing about how much of a guess was right.
    if invitation is None or not invitation.secret or not hmac.compare_digest(invitation.secret.encode(),
                                                                                secret.encode()):
        raise InvitationInvalid(_("This invitation link is not valid."))
    if invitation.accepted_at is not None:
        raise InvitationInvalid(_("This invitation has already been used."))
    if invitation_expired(invitation):
        raise InvitationInvalid(_("This invitation has expired; ask your administrator for a new one."))
    return invitation


def invitation_expired(invitation: Invitation) -> bool:
    """Valid INVITATION_MAX_AGE after its creation in the database; sending the e-mail again does not extend it."""
    return timezone.now() >= invitation.created_at + INVITATION_MAX_AGE


def invitation_accept(*, token: str, username: str, password: str) -> Advisor:
    with transaction.atomic():
        invitation = invitation_from_token(token)
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at is not None:  # a second tab raced us to it
            raise InvitationInvalid(_("This invitation has already been used."))
        advisor = advisor_create(account=invitation.account, username=username, email=invitation.email,
                                 display_name=invitation.display_name or username, password=password,
                                 sites=list(invitation.sites.all()))
        if invitation.licensed:
            try:  # the quota's rule, under the account's lock, as for any grant
                advisor = license_grant(advisor=advisor, by=invitation.invited_by)  # who invited with it
            except LicenseQuotaExceeded:
                pass  # joined without the license: the view says so, the administrator can grant one later
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = advisor.user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return advisor
