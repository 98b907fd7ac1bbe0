"""Print how many spooled messages are in each state, for monitoring and scripts (G5)."""

import json

from django.core.management.base import BaseCommand

from channels_conn.spool import ingest_counts


class Command(BaseCommand):
    help = "Counts of received, processing, processed and failed inbound messages, and pending ones."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON object on stdout")

    def handle(self, *args, as_json: bool, **options):
        counts = ingest_counts()
        if as_json:
            self.stdout.write(json.dumps(counts))
            return
        for name, count in counts.items():
            label = "pending > 1 min" if name == "pending" else name
            self.stdout.write(f"{label:>16}: {count}")
