from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'conversations'
    verbose_name = _("Conversations")

    def ready(self):
        from conversations import auth  # noqa: F401  (connects the signals that close sockets of revoked credentials)
