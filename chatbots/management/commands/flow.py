"""`manage.py flow export NAME [FILE] | import FILE | validate FILE`: chatbot flows as versionable JSON."""
import json
import sys

from django.core.management.base import BaseCommand, CommandError

from chatbots.engine import FlowInvalid, validate
from chatbots.models import Chatbot
from chatbots.selectors import advisor_usernames, flow_document, flow_dumps
from chatbots.services import flow_import


class Command(BaseCommand):
    help = "Export, import or validate a chatbot flow as JSON. Invalid files exit non-zero and import nothing."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export",
                                help="Write the named chatbot's flow to FILE (stdout without FILE or with -).")
        export.add_argument("name")
        export.add_argument("file", nargs="?", default="-")
        sub.add_parser("import", help="Create or replace the chatbot the file names.").add_argument("file")
        sub.add_parser("validate", help="Report every error of the file, with its path.").add_argument("file")

    def handle(self, *args, action: str, file: str, name: str = "", **options):
        if action == "export":
            return self._export(name, file)
        data = self._read(file)
        if action == "validate":
            errors = validate(data, advisors=advisor_usernames())
            if errors:
                self._fail(file, errors, "invalid")
            self.stdout.write(f"{file}: valid")
            return
        try:
            chatbot = flow_import(data=data)
        except FlowInvalid as invalid:
            self._fail(file, invalid.errors, "nothing imported")
        self.stdout.write(f'{file}: imported chatbot "{chatbot.name}" ({len(data["sequences"])} sequences)')

    def _export(self, name: str, file: str) -> None:
        chatbot = Chatbot.objects.filter(name=name).first()
        if chatbot is None:
            raise CommandError(f'no chatbot named "{name}"')
        document, errors = flow_document(chatbot=chatbot)
        text = flow_dumps(document)
        if file == "-":
            self.stdout.write(text, ending="")
        else:
            with open(file, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
        # Exported anyway (it is what is stored), but say so: importing it back would be refused.
        for error in errors + validate(document, advisors=advisor_usernames()):
            self.stderr.write(f"warning: {error}")

    def _read(self, file: str):
        try:
            if file == "-":
                return json.load(sys.stdin)
            with open(file, encoding="utf-8") as handle:
                return json.load(handle)
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror}") from None
        except (ValueError, UnicodeDecodeError) as error:
            raise CommandError(f"{file}: not valid JSON: {error}") from None

    def _fail(self, file: str, errors: list[str], outcome: str):
        for error in errors:
            self.stderr.write(error)
        raise CommandError(f"{file}: {len(errors)} error{'s' if len(errors) != 1 else ''}, {outcome}")
