"""`manage.py retention`: erase now what the nightly run (Celery beat) would erase."""
from django.core.management.base import BaseCommand

from integrations.services import retention_erase


class Command(BaseCommand):
    help = "Erase the closed conversations older than each account's retention_days, in small batches."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args, batch_size: int | None = None, **options):
        erased = retention_erase(batch_size=batch_size, actor_name="manage.py retention")
        self.stdout.write(f"{erased} conversation(s) erased")
