"""Re-enqueue spooled messages left unprocessed, as the beat schedule does every 30 s (G2)."""

from django.core.management.base import BaseCommand

from channels_conn.spool import sweep_inbound


class Command(BaseCommand):
    help = "Re-enqueue inbound messages not processed within --older-than seconds."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=60, metavar="SECONDS")

    def handle(self, *args, older_than: int, **options):
        enqueued = sweep_inbound(older_than_seconds=older_than)
        if enqueued or options["verbosity"] >= 1:
            self.stdout.write(f"Re-enqueued {enqueued} inbound message(s).")
