"""`manage.py spooled_mail ID`: a spool row's mail exactly as the ingress received it, on stdout.

Processed mail is kept without the attachment bytes its messages store (ingest.compaction); this
puts them back, byte for byte. Pipe it on: `manage.py spooled_mail 42 | manage.py inspect_email -`.
"""

import sys

from django.core.management.base import BaseCommand, CommandError

from channels_conn.models import InboundMessage
from ingest.compaction import MailIncomplete, original_raw


class Command(BaseCommand):
    help = "Write a spooled message's raw mail, as received, to standard output (for inspect_email -)."

    def add_arguments(self, parser):
        parser.add_argument("id", type=int, help="the spool row's id, as logs give it")

    def handle(self, *args, id: int, **options):
        row = InboundMessage.objects.filter(pk=id).first()
        if row is None:
            raise CommandError(
                f"No spooled message #{id}: it never was, or it was processed more than "
                "SPOOL_RETENTION_DAYS ago and its raw mail deleted."
            )
        try:
            raw = original_raw(row)
        except MailIncomplete as exc:
            raise CommandError(str(exc)) from exc
        output = getattr(self.stdout, "_out", sys.stdout)
        output = getattr(output, "buffer", output)
        output.write(raw)
        output.flush()
