"""The inbox's JavaScript catalogue: Django's JavaScriptCatalog over locale/<lang>/LC_MESSAGES/djangojs.po."""
from django.conf import settings
from django.utils import translation
from django.views.i18n import JavaScriptCatalog


class InboxCatalogue(JavaScriptCatalog):
    """GET /jsi18n/?lang=fr: the strings of static/inbox/js/ in one language, as a classic script that defines
    `django.gettext`, `django.ngettext` and `django.interpolate` before the page's modules run
    (static/inbox/js/i18n.js wraps them). The page names its own language in the address, so the catalogue always
    matches the page even if the advisor switched language in another tab meanwhile; without `lang`, the request's."""

    domain = "djangojs"

    def get(self, request, *args, **kwargs):
        language = request.GET.get("lang", "")
        if language in dict(settings.LANGUAGES):
            translation.activate(language)
        return super().get(request, *args, **kwargs)
