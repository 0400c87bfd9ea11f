from django.apps import AppConfig


class AdvisorsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'advisors'

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from advisors.selectors import advisor_language_for_user

        # Read it once at sign-in, so the session's pages and API calls find it in the cache
        # (advisors.middleware.AdvisorLanguageMiddleware) instead of asking the database.
        user_logged_in.connect(lambda sender, user, **kwargs: advisor_language_for_user(user.pk),
                               weak=False, dispatch_uid="advisor-language-at-sign-in")
