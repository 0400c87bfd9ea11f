"""The product's settings for the Celery worker the fault tests start: only the broker's redelivery is faster.

A task acknowledged late comes back to a worker after the broker's visibility timeout (300 s in production, longer
than any e-mail takes); five seconds here, and a sweep every second, so a test waits seconds, not minutes."""
from livechat.settings import *  # noqa: F403

CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 5, "unacked_restore_interval": 1,
                                   "unacked_restore_throttle": 1}
