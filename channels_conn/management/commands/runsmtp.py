"""Run the SMTP ingress (G1, G2) until SIGTERM or SIGINT."""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from channels_conn.smtp import serve
from inboxhub.lib.secret_key import MISSING, secret_key_is_set


class Command(BaseCommand):
    help = "Accept mail for fallback addresses on SMTP_INGRESS_HOST:SMTP_INGRESS_PORT."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.SMTP_INGRESS_HOST)
        parser.add_argument("--port", type=int, default=settings.SMTP_INGRESS_PORT)

    def handle(self, *args, host: str, port: int, **options):
        if not secret_key_is_set():  # reply tokens are checked with it (issue 16)
            raise CommandError(MISSING)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"SMTP ingress on {host}:{port}", ending="\n")
        self.stdout.flush()
        serve(host=host, port=port, stop=stop)
