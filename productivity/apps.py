from django.apps import AppConfig


class ProductivityConfig(AppConfig):
    """Advisor productivity (issue 16): canned responses, labels, search and transcripts."""

    name = "productivity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from productivity import folding

        connection_created.connect(folding.register_sqlite_functions)
