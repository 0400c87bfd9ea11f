"""Reads about accounts and advisors: the license count and the advisors of a site, each rule written once."""
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


def advisor_of_site(*, username: str, site_id: int, account_id: int) -> Advisor | None:
    """The advisor with this username if they work on this site of this account (with the user), else None."""
    return (Advisor.objects.select_related("user")
            .filter(user__username=username, account_id=account_id, sites=site_id).first())


def advisor_is_staff(advisor: Advisor) -> bool:
    """"Staff" (CONTRACT section 7): the account's owner, or a Django staff user."""
    user = advisor.user
    return user.is_active and (user.is_staff or advisor.account.owner_id == user.pk)
