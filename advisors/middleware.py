"""The advisor's own language over the browser's (CONTRACT section 7, "Languages")."""
from django.contrib.auth import SESSION_KEY
from django.utils import translation

from advisors.selectors import advisor_language_for_user


class AdvisorLanguageMiddleware:
    """After LocaleMiddleware (the browser's Accept-Language) and the session: a signed-in advisor who chose a
    language gets it on every page and API call of that session. Token clients get theirs in InboxApi.initial, where
    the token is resolved. Costs one cache read per request of a signed-in session, nothing for anyone else."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user_id = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
        if user_id is not None:
            try:
                language = advisor_language_for_user(int(user_id))
            except (TypeError, ValueError):
                language = ""
            if language:
                translation.activate(language)
                request.LANGUAGE_CODE = language
        return self.get_response(request)
