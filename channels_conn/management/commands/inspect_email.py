"""`manage.py inspect_email FILE …`: what the pipeline reads from raw messages, as JSON (G7, G8).

One file prints one indented JSON object. Several files, or a directory (its .eml,
.txt and suffix-less files, sub-directories included), print one JSON object a line,
each with its "file", so that a corpus of hundreds is read in one start-up; a file
that cannot be read gives a line with its "error" and the rest go on.
"""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inboxhub.lib.mail.authentication import evaluate_offline
from inboxhub.lib.mail.parsing import inspect_message, parse_message

# What a directory's raw messages are named: .eml, .txt, or no suffix (a README or a JSON index is not mail).
MESSAGE_SUFFIXES = (".eml", ".txt", "")


class Command(BaseCommand):
    help = (
        "Print, as JSON, what the pipeline reads from a raw message (FILE, or - for stdin), "
        "with what can be checked of its sender without the SMTP connection. Several files or a "
        "directory print one JSON object a line."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument(
            "file",
            nargs="+",
            help="a raw message (.eml); - reads standard input; several files or a directory: one line each",
        )
        parser.add_argument(
            "--trusted-authserv-id",
            default=None,
            help="read the verdict from the topmost Authentication-Results header of this authserv-id "
            "(the relay in front); any other such header is ignored",
        )

    def handle(self, *args, file: list[str], trusted_authserv_id: str | None, **options):
        if len(file) == 1 and not Path(file[0]).is_dir():
            raw = self._read(file[0], options.get("stdin") or sys.stdin.buffer)
            result = self._inspect(raw, trusted_authserv_id)
            self.stdout.write(json.dumps(result, ensure_ascii=False, indent=2))
            return
        for path in self._paths(file):
            try:
                line = {"file": path, **self._inspect(self._read(path, None), trusted_authserv_id)}
            except CommandError as error:
                line = {"file": path, "error": str(error)}
            self.stdout.write(json.dumps(line, ensure_ascii=False))

    def _inspect(self, raw: bytes, trusted_authserv_id: str | None) -> dict:
        result = inspect_message(parse_message(raw))
        # DKIM, DMARC by DKIM, or the relay's verdict: SPF needs the client's IP, which a file lacks.
        result["authentication"] = evaluate_offline(raw, trusted_authserv_id=trusted_authserv_id)
        return result

    def _paths(self, names: list[str]) -> list[str]:
        """The files named, then each directory's messages in name order, sub-directories included."""
        paths = []
        for name in names:
            if name == "-":
                raise CommandError("- (standard input) reads one message; name files to read several")
            folder = Path(name)
            if folder.is_dir():
                found = (p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
                paths += sorted(str(p) for p in found if p.suffix.lower() in MESSAGE_SUFFIXES)
            else:
                paths.append(name)
        return paths

    def _read(self, file: str, stdin) -> bytes:
        if file == "-":
            return stdin.read()
        try:
            with open(file, "rb") as message:
                return message.read()
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}") from error
