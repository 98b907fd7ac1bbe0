"""`make run`: migrate, seed the demo, then run web, SMTP ingress and (with Redis) worker and beat."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from inboxhub.management.commands.demo import ACCOUNTS, PASSWORD, describe

SWEEP_EVERY_SECONDS = 30


class Command(BaseCommand):
    help = "Run the whole product on this machine (web, SMTP ingress, worker) with the demo seeded."

    def handle(self, *args, **options):
        port = os.environ.get("PORT", "8000")
        call_command("migrate", verbosity=0)
        call_command("demo", verbosity=0)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Local trials send from this machine; production leaves TRUSTED_NETWORKS empty (README).
        env.setdefault("TRUSTED_NETWORKS", "127.0.0.0/8")
        manage = [sys.executable, "manage.py"]
        commands = {
            "web": [
                sys.executable,
                "-m",
                "gunicorn",
                "inboxhub.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--access-logfile",
                "-",
            ],
            "smtp": [*manage, "runsmtp"],
        }
        if settings.REDIS_URL:
            celery = [sys.executable, "-m", "celery", "-A", "inboxhub"]
            concurrency = os.environ.get("WORKER_CONCURRENCY", "1")
            commands["worker"] = [*celery, "worker", "--concurrency", concurrency, "--loglevel", "INFO"]
            commands["beat"] = [
                *celery,
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(settings.VAR_DIR / "beat"),
            ]
        children = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}  # noqa: S603
        self.print_banner(port)
        try:
            self.supervise(children, manage, env)
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children.values():
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()

    def supervise(self, children, manage, env):
        last_sweep = time.monotonic()
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} stopped (exit code {child.returncode}); stopping InboxHub.")
                    return
            # Without Redis there is no beat: sweep left-over spool rows from here.
            if not settings.REDIS_URL and time.monotonic() - last_sweep > SWEEP_EVERY_SECONDS:
                subprocess.run([*manage, "sweep_inbound", "--verbosity", "0"], env=env, check=False)  # noqa: S603
                last_sweep = time.monotonic()
            try:
                time.sleep(1)
            except KeyboardInterrupt:
                return

    def print_banner(self, port: str) -> None:
        smtp = f"{settings.SMTP_INGRESS_HOST}:{settings.SMTP_INGRESS_PORT}"
        lines = [
            "",
            "InboxHub is running.",
            f"  Log in:  http://127.0.0.1:{port}/login/",
            f"           admin@acme.example / {PASSWORD}  (also lead@, ada@, ben@, fay@acme.example;"
            f" admin@globex.example)",
            f"  SMTP:    {smtp}  (send mail to an inbox's fallback address)",
        ]
        for spec in ACCOUNTS:
            for inbox in describe(spec["subdomain"])["inboxes"]:
                lines.append(
                    f"           {inbox['fallback_address']:<40} {spec['company_name']} › {inbox['name']}"
                )
        lines += [
            f"  Try:     swaks --server {smtp} --to {describe('acme')['inboxes'][0]['fallback_address']}",
            f"  Database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
            f"  · tasks: {'Redis worker' if settings.REDIS_URL else 'in-process (no REDIS_URL)'}",
            "  Stop with Ctrl-C.",
            "",
        ]
        self.stdout.write("\n".join(lines))
