from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'conversations'

    def ready(self):
        from conversations import auth  # noqa: F401  (connects the signals that close sockets of revoked credentials)
