"""The Celery app: on the Redis broker when REDIS_URL is set, eager otherwise (see settings)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livechat.settings")

app = Celery("livechat")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
