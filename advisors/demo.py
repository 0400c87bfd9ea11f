"""The demo data of CONTRACT section 2, created idempotently."""
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from advisors import services
from advisors.models import Account, Advisor, Site

DEMO_PASSWORD = "demo1234"
ACCOUNT_NAME = "Demo Company"
SITES = {
    "shop": {"key": "demo-shop", "name": "Shop", "color": "#2563eb"},
    "blog": {"key": "demo-blog", "name": "Blog", "color": "#16a34a"},
}
ADVISORS = {
    "admin": {"name": "Admin", "licensed": True, "sites": ["shop", "blog"], "sees_chatbot": True, "owner": True},
    "alice": {"name": "Alice", "licensed": True, "sites": ["shop", "blog"], "sees_chatbot": True},
    "bob": {"name": "Bob", "licensed": True, "sites": ["shop"], "sees_chatbot": False},
    "carol": {"name": "Carol", "licensed": False, "sites": ["shop"], "sees_chatbot": False},
}


def demo_origins() -> list[str]:
    origins = ["http://127.0.0.1:8000", "http://localhost:8000", settings.PUBLIC_URL, *settings.DEMO_EXTRA_ORIGINS]
    return list(dict.fromkeys(o.rstrip("/") for o in origins if o))


@transaction.atomic
def seed_demo() -> dict:
    from chatbots.services import demo_chatbot_ensure

    account, _ = Account.objects.get_or_create(name=ACCOUNT_NAME, defaults={"license_quota": 5})
    chatbot = demo_chatbot_ensure()
    sites = {}
    for slug, spec in SITES.items():
        site, _ = Site.objects.update_or_create(
            key=spec["key"],
            defaults={"account": account, "name": spec["name"], "color": spec["color"],
                      "allowed_origins": demo_origins(), "chatbot": chatbot, "livechat_only": False},
        )
        sites[slug] = site

    user_model = get_user_model()
    for username, spec in ADVISORS.items():
        user = user_model.objects.filter(username=username).first()
        if user is None:
            advisor = services.advisor_create(
                account=account, username=username, email=f"{username}@demo.example", display_name=spec["name"],
                password=DEMO_PASSWORD, sites=[sites[s] for s in spec["sites"]],
                sees_chatbot=spec["sees_chatbot"], staff=spec.get("owner", False))
        else:
            advisor = Advisor.objects.get(user=user)
        if spec.get("owner") and account.owner_id != advisor.user_id:
            account.owner = advisor.user
            account.save(update_fields=["owner"])
        services.license_set(advisor=advisor, licensed=spec["licensed"])

    return {
        "account": {"name": account.name, "license_quota": account.license_quota},
        "sites": {slug: {"key": s.key, "name": s.name, "origins": s.allowed_origins} for slug, s in sites.items()},
        "advisors": {
            username: {"email": f"{username}@demo.example", "password": DEMO_PASSWORD, "licensed": spec["licensed"],
                       "sites": spec["sites"]}
            for username, spec in ADVISORS.items()
        },
        "chatbot": {"name": chatbot.name},
    }
