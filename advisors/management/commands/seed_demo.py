import json

from django.core.management.base import BaseCommand

from advisors.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo account, sites, advisors and chatbot (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the demo data as one JSON object.")

    def handle(self, *args, **options):
        data = seed_demo()
        if options["json"]:
            self.stdout.write(json.dumps(data))
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Demo data ready: sites {', '.join(s['key'] for s in data['sites'].values())}; "
                f"advisors {', '.join(data['advisors'])} (password demo1234)."))
