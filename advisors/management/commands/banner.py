from django.conf import settings
from django.core.management.base import BaseCommand

from advisors.demo import ADVISORS, DEMO_PASSWORD


class Command(BaseCommand):
    help = "Print where the product answers and the demo logins (make run)."

    def handle(self, *args, **options):
        base = f"http://{settings.HOST}:{settings.PORT}"
        logins = ", ".join(ADVISORS)
        self.stdout.write(
            f"\n  Inbox:     {base}/inbox/\n"
            f"  Admin:     {base}/admin/\n"
            f"  Demo page: {base}/demo/\n"
            f"  Logins:    {logins} (password {DEMO_PASSWORD}); admin is the account owner, carol has no license\n"
            f"  Mode:      {'PostgreSQL' if 'postgresql' in settings.DATABASES['default']['ENGINE'] else 'SQLite'}, "
            f"{'Redis' if settings.REDIS_URL else 'in-memory'} channel layer, "
            f"{'Celery worker (make worker)' if settings.REDIS_URL else 'eager tasks'}\n"
        )
