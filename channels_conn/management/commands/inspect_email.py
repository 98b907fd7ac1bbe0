"""`manage.py inspect_email FILE`: what the pipeline reads from a raw message, as JSON (G7)."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from channels_conn.parsing import inspect_message, parse_message


class Command(BaseCommand):
    help = "Print, as JSON, what the pipeline reads from a raw message (FILE, or - for stdin)."
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("file", help="a raw message (.eml); - reads standard input")

    def handle(self, *args, file: str, **options):
        raw = self._read(file, options.get("stdin") or sys.stdin.buffer)
        self.stdout.write(json.dumps(inspect_message(parse_message(raw)), ensure_ascii=False, indent=2))

    def _read(self, file: str, stdin) -> bytes:
        if file == "-":
            return stdin.read()
        try:
            with open(file, "rb") as message:
                return message.read()
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}") from error
