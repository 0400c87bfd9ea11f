from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AdvisorsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'advisors'
    verbose_name = _("Advisors")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from advisors.selectors import advisor_language_for_user

        # Read it once at sign-in, so the session's pages and API calls find it in the cache
        # (advisors.middleware.AdvisorLanguageMiddleware) instead of asking the database.
        user_logged_in.connect(lambda sender, user, **kwargs: advisor_language_for_user(user.pk),
                               weak=False, dispatch_uid="advisor-language-at-sign-in")
