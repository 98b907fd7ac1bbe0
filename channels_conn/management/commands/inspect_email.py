"""`manage.py inspect_email FILE`: what the pipeline reads from a raw message, as JSON (G7, G8)."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from inboxhub.lib.mail.authentication import evaluate_offline
from inboxhub.lib.mail.parsing import inspect_message, parse_message


class Command(BaseCommand):
    help = (
        "Print, as JSON, what the pipeline reads from a raw message (FILE, or - for stdin), "
        "with what can be checked of its sender without the SMTP connection."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("file", help="a raw message (.eml); - reads standard input")
        parser.add_argument(
            "--trusted-authserv-id",
            default=None,
            help="read the verdict from the topmost Authentication-Results header of this authserv-id "
            "(the relay in front); any other such header is ignored",
        )

    def handle(self, *args, file: str, trusted_authserv_id: str | None, **options):
        raw = self._read(file, options.get("stdin") or sys.stdin.buffer)
        result = inspect_message(parse_message(raw))
        # DKIM, DMARC by DKIM, or the relay's verdict: SPF needs the client's IP, which a file lacks.
        result["authentication"] = evaluate_offline(raw, trusted_authserv_id=trusted_authserv_id)
        self.stdout.write(json.dumps(result, ensure_ascii=False, indent=2))

    def _read(self, file: str, stdin) -> bytes:
        if file == "-":
            return stdin.read()
        try:
            with open(file, "rb") as message:
                return message.read()
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}") from error
