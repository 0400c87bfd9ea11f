from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"
    verbose_name = _("Integrations and visitor data")

    def ready(self):
        from integrations import webhooks  # noqa: F401  (forgets cached subscriptions when a webhook changes)
