"""`manage.py visitor export ID` (JSON on stdout) and `manage.py visitor erase ID`: a visitor's data on request."""
import json

from django.core.management.base import BaseCommand, CommandError

from conversations.models import Visitor
from integrations import services


class Command(BaseCommand):
    help = "Export (JSON) or erase one visitor's data: variables, conversation, items, image files and token."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["export", "erase"])
        parser.add_argument("visitor_id", type=int, metavar="ID")

    def handle(self, *args, action: str, visitor_id: int, **options):
        if action == "export":
            try:
                data = services.visitor_export(visitor_id=visitor_id, actor_name="manage.py visitor export")
            except Visitor.DoesNotExist:
                raise CommandError(f"No visitor #{visitor_id}.") from None
            self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
            return
        if not services.visitor_erase(visitor_id=visitor_id, actor_name="manage.py visitor erase"):
            raise CommandError(f"No visitor #{visitor_id}.")
        self.stdout.write(f"visitor #{visitor_id} erased")
