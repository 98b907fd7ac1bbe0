"""`make run`: migrate, seed the demo, then run web, SMTP ingress and (with Redis) a worker.

This command does what needs Django, then replaces itself (exec, same pid) with
the supervisor, `inboxhub/supervisor.py`, which imports no Django: the process
that stays up all along is a few MiB (issue 18). With Redis the worker runs the
periodic sweeps in a thread (`worker --beat-thread`); without it tasks run in-process
and `manage.py runschedule` runs the same schedule.
"""

import json
import os
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from inboxhub import supervisor
from inboxhub.lib.env import env_bool
from inboxhub.lib.secret_key import MISSING, secret_key_is_set
from inboxhub.management.commands.demo import ACCOUNTS, PASSWORD, describe
from inboxhub.models import Account

# Mail from these addresses counts as authenticated in demo mode, so local trials of forwarded mail work.
DEMO_TRUSTED_NETWORKS = "127.0.0.0/8"


def worker_concurrency() -> str:
    """WORKER_CONCURRENCY, or `auto`: Celery's one process per core it may use (within a cgroup's quota)."""
    return os.environ.get("WORKER_CONCURRENCY", "").strip() or "auto"


class Command(BaseCommand):
    help = (
        "Run the whole product on this machine (web, SMTP ingress, worker). By default a demo: accounts "
        "with a published password, and mail from 127.0.0.0/8 trusted; --no-demo or INBOXHUB_DEMO=0 for a "
        "real install."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-demo",
            action="store_true",
            help="No demo accounts; trust no network unless TRUSTED_NETWORKS says so (INBOXHUB_DEMO=0).",
        )

    def handle(self, *args, **options):
        if not secret_key_is_set():  # or each child would die, and be restarted, for want of it
            raise CommandError(MISSING)
        demo = env_bool("INBOXHUB_DEMO", True) and not options["no_demo"]
        port = int(os.environ.get("PORT", "8000"))
        smtp_host, smtp_port = settings.SMTP_INGRESS_HOST, settings.SMTP_INGRESS_PORT
        for what, host, number, variable in (
            ("web", "127.0.0.1", port, "PORT"),
            ("SMTP", smtp_host, smtp_port, "SMTP_INGRESS_PORT"),
        ):
            if supervisor.port_in_use(host, number):
                raise CommandError(
                    f"port {number} ({what}, {host}) is already in use: stop what listens there, "
                    f"or set {variable} to a free port."
                )
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if demo:
            # Local trials send from this machine; a real install leaves TRUSTED_NETWORKS empty (README).
            env.setdefault("TRUSTED_NETWORKS", DEMO_TRUSTED_NETWORKS)
        self.announce_mode(demo, env.get("TRUSTED_NETWORKS", ""))
        call_command("migrate", verbosity=0)
        if demo:
            call_command("demo", verbosity=0)
        else:
            self.warn_about_demo_accounts_left()
        spec = {"children": self.children(port, smtp_host, smtp_port), "banner": self.banner(port, demo)}
        self.become_the_supervisor(spec, env)

    def become_the_supervisor(self, spec: dict, env: dict[str, str]) -> None:
        """Exec the prefork, then the supervisor, in this process: same pid, so Ctrl-C and the terminal
        see no change. A fresh interpreter rather than this one: the children would otherwise share
        what migrate and the demo left in memory, and any connection they opened."""
        connections.close_all()
        self.stdout.flush()
        self.stderr.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        command = [sys.executable, "-m", "inboxhub.management.prefork", json.dumps(spec)]
        os.execve(sys.executable, command, env)  # noqa: S606

    def announce_mode(self, demo: bool, trusted: str) -> None:
        if demo:
            trust = (
                f"trusts mail sent from {trusted} as authenticated"
                if trusted
                else "trusts no network (TRUSTED_NETWORKS is empty)"
            )
            self.stdout.write(
                self.style.WARNING(
                    f"Demo mode: seeds demo accounts whose password is published ({PASSWORD}) and {trust}.\n"
                    "  Not for real mail: for a real install on this server run "
                    "`INBOXHUB_DEMO=0 make run` (or `manage.py runall --no-demo`)."
                )
            )
        else:
            trust = f"trusted networks: {trusted}" if trusted else "no trusted networks"
            self.stdout.write(f"No demo: no demo accounts are seeded; {trust}.")

    def warn_about_demo_accounts_left(self) -> None:
        left = Account.objects.filter(subdomain__in=[spec["subdomain"] for spec in ACCOUNTS])
        names = ", ".join(left.order_by("subdomain").values_list("subdomain", flat=True))
        if names:
            self.stderr.write(
                f"This database still holds the demo accounts {names}, whose password is published "
                f"({PASSWORD}): use a fresh DATABASE_URL for a real install."
            )

    def children(self, port: int, smtp_host: str, smtp_port: int) -> list[dict]:
        """What the supervisor runs: name, command line and the port it answers on (probe)."""
        manage = [sys.executable, "manage.py"]
        web = [
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
            # Within the supervisor's stop timeout: requests in flight finish before the port is let go.
            "--graceful-timeout",
            "5",
            "--access-logfile",
            "-",
        ]
        children = [
            {"name": "web", "command": web, "probe": ["http", "127.0.0.1", port]},
            {"name": "smtp", "command": [*manage, "runsmtp"], "probe": ["smtp", smtp_host, smtp_port]},
        ]
        if settings.REDIS_URL:
            # One server: a thread of the worker keeps the beat schedule (the sweeps), instead of a
            # beat process of its own (inboxhub/celery.py). docker-compose runs beat as its own service.
            worker = [sys.executable, "-m", "celery", "-A", "inboxhub", "worker", "--beat-thread"]
            worker += ["--schedule", str(settings.VAR_DIR / "beat"), "--concurrency", worker_concurrency()]
            children.append({"name": "worker", "command": [*worker, "--loglevel", "INFO"], "probe": None})
        else:
            # No worker, so no beat thread: the sweeps and prunes run in a process of their own.
            children.append({"name": "schedule", "command": [*manage, "runschedule"], "probe": None})
        return children

    def banner(self, port: int, demo: bool) -> str:
        """What the supervisor prints once every port answers."""
        smtp = f"{settings.SMTP_INGRESS_HOST}:{settings.SMTP_INGRESS_PORT}"
        lines = ["", "InboxHub is running.", f"  Log in:  http://127.0.0.1:{port}/login/"]
        if demo:
            lines.append(
                f"           admin@acme.example / {PASSWORD}  (also lead@, ada@, ben@, fay@acme.example;"
                f" admin@globex.example) — a published password: demo only"
            )
        else:
            lines.append(
                f"           first account: http://127.0.0.1:{port}/signup/ or `manage.py createaccount`"
            )
        lines.append(f"  SMTP:    {smtp}  (send mail to an inbox's fallback address)")
        if demo:
            for spec in ACCOUNTS:
                for inbox in describe(spec["subdomain"])["inboxes"]:
                    lines.append(
                        f"           {inbox['fallback_address']:<40} {spec['company_name']} › {inbox['name']}"
                    )
            lines.append(
                f"  Try:     swaks --server {smtp} --to {describe('acme')['inboxes'][0]['fallback_address']}"
            )
        lines += [
            f"  Database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
            f"  · tasks: {'Redis worker' if settings.REDIS_URL else 'in-process (no REDIS_URL)'}",
            "  Stop with Ctrl-C.",
            "",
        ]
        return "\n".join(lines)
