from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"
    verbose_name = "Integrations and visitor data"

    def ready(self):
        from integrations import webhooks  # noqa: F401  (forgets cached subscriptions when a webhook changes)
