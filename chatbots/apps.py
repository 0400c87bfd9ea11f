from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatbotsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'chatbots'
    verbose_name = _("Chatbots")
