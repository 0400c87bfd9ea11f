"""Reads about accounts and advisors: the license count and the advisors of a site, each rule written once."""
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet

from advisors.models import Account, Advisor

_GRANTED = Q(licensed=True)


def licenses_granted(*, account: Account) -> int:
    """How many Livechat Premium licenses the account has granted (the quota's "used")."""
    return Advisor.objects.filter(_GRANTED, account=account).count()


def accounts_with_licenses_granted(queryset: QuerySet | None = None) -> QuerySet:
    """Accounts annotated with `granted`, the same count as licenses_granted, in one query for a list."""
    queryset = Account.objects.all() if queryset is None else queryset
    return queryset.annotate(granted=Count("advisors", filter=Q(advisors__licensed=True)))


def licenses_left(*, account: Account, granted: int | None = None) -> int:
    granted = licenses_granted(account=account) if granted is None else granted
    return max(0, account.license_quota - granted)


def quota_editable_by(*, user, account: Account | None) -> bool:
    """The license quota is the platform operator's to set: a superuser who is neither the account's owner nor one
    of its collaborators. The customer's own people (the owner included, even a superuser) only read it."""
    if not (user.is_active and user.is_superuser):
        return False
    if account is None or account.pk is None:  # a new account: the operator's, not a customer's second one
        return not accounts_owned_or_joined(user).exists()
    if account.owner_id == user.pk:
        return False
    return not Advisor.objects.filter(account=account, user=user).exists()


def accounts_owned_or_joined(user) -> QuerySet:
    """The ids of the accounts this user owns or collaborates on."""
    return Account.objects.filter(Q(owner=user) | Q(advisors__user=user)).values("pk")


def accounts_of(user) -> QuerySet:
    """The accounts a user works for in the admin: those they own or collaborate on; for a platform operator (a
    superuser of no account), every account."""
    mine = Account.objects.filter(pk__in=accounts_owned_or_joined(user))
    if user.is_superuser and not mine.exists():
        return Account.objects.all()
    return mine


def pending_invitations(*, accounts: QuerySet) -> QuerySet:
    """Invitations of these accounts not accepted yet, newest first (expired ones included: they can be sent again
    only as new ones, and the list says so)."""
    from advisors.models import Invitation

    return (Invitation.objects.filter(account__in=accounts, accepted_at__isnull=True)
            .select_related("account").order_by("-created_at", "-pk"))


def advisor_of_site(*, username: str, site_id: int, account_id: int) -> Advisor | None:
    """The advisor with this username if they work on this site of this account (with the user), else None."""
    return (Advisor.objects.select_related("user")
            .filter(user__username=username, account_id=account_id, sites=site_id).first())


def advisor_is_staff(advisor: Advisor) -> bool:
    """"Staff" (CONTRACT section 7): the account's owner, or a Django staff user."""
    user = advisor.user
    return user.is_active and (user.is_staff or advisor.account.owner_id == user.pk)


def _language_key(user_id: int) -> str:
    return f"advisor-language:{user_id}"


def advisor_language_for_user(user_id: int) -> str:
    """The language a signed-in user chose as an advisor ("" = the browser's), read through the cache: every page
    and API call of a browser session asks, and it changes only when that advisor picks another."""
    key = _language_key(user_id)
    language = cache.get(key)
    if language is None:
        language = Advisor.objects.filter(user_id=user_id).values_list("language", flat=True).first() or ""
        cache.set(key, language, 24 * 3600)
    return language


def advisor_language_forget(user_id: int) -> None:
    cache.delete(_language_key(user_id))
