from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProductivityConfig(AppConfig):
    """Advisor productivity (issue 16): canned responses, labels, search and transcripts."""

    name = "productivity"
    verbose_name = _("Productivity")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from productivity import folding

        connection_created.connect(folding.register_sqlite_functions)
