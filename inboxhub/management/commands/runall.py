"""`make run`: migrate, seed the demo, then run web, SMTP ingress and (with Redis) worker and beat.

A small supervisor for one server. Each child runs in a process group of its
own, so a Ctrl-C reaches only this command, which then stops every group and
waits until no process of it is left (a gunicorn worker outliving its master
would hold the port). A child that dies is restarted after a pause that
doubles with each quick failure, and the others keep running.
"""

import contextlib
import http.client
import logging
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from inboxhub.lib.env import env_bool
from inboxhub.lib.secret_key import MISSING, secret_key_is_set
from inboxhub.management.commands.demo import ACCOUNTS, PASSWORD, describe
from inboxhub.models import Account

logger = logging.getLogger(__name__)

# Mail from these addresses counts as authenticated in demo mode, so local trials of forwarded mail work.
DEMO_TRUSTED_NETWORKS = "127.0.0.0/8"
SWEEP_EVERY_SECONDS = 30
# A child is restarted 1 s after it dies, then 2, 4 … up to 30 s while it keeps dying within a minute.
RESTART_FIRST_DELAY_SECONDS = 1
RESTART_MAX_DELAY_SECONDS = 30
STABLE_AFTER_SECONDS = 60
# On stop, children get SIGTERM and this long to finish (a worker's task is redelivered if cut short).
STOP_TIMEOUT_SECONDS = 10
TICK_SECONDS = 0.2
SLOW_START_SECONDS = 60


@dataclass
class Child:
    """One supervised command and the process group it runs in."""

    name: str
    command: list[str]
    probe: Callable[[], bool] | None = None  # whether the child serves its port; None: no port
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    ready: bool = False
    slow_start_logged: bool = False

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(self.command, env=env, start_new_session=True)  # noqa: S603
        self.started_at = time.monotonic()
        self.restart_at = None
        self.ready = self.probe is None
        self.slow_start_logged = False
        logger.info("%s started (pid %s)", self.name, self.process.pid)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def signal_group(pgid: int, signum: int) -> bool:
    """Send signum to a process group; False when no process of it is left."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. A zombie holds no port, and where nothing reaps
    orphans (a container whose first process does not), its zombies would never leave."""
    proc = Path("/proc")
    if not proc.is_dir():
        return signal_group(pgid, 0)
    for stat in proc.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # After the command's name in parentheses: state, parent, process group.
            state, _parent, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(group) == pgid and state not in ("Z", "X"):
                return True
    return False


def stop_groups(processes: list[subprocess.Popen], timeout: float, *, hurry=lambda: False) -> None:
    """Stop each child and wait until its process group is empty; SIGKILL what is left after timeout.

    SIGTERM goes to the child alone while it runs: gunicorn's and Celery's masters stop their own
    workers (a pool process signalled directly dies as a "lost worker"). Only what a dead master left
    gets it directly.
    """
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        else:
            signal_group(process.pid, signal.SIGTERM)
    left = wait_until_gone(processes, time.monotonic() + timeout, hurry)
    for process in left:
        signal_group(process.pid, signal.SIGKILL)
    wait_until_gone(left, time.monotonic() + 5)


def wait_until_gone(processes: list[subprocess.Popen], deadline: float, hurry=lambda: False) -> list:
    """Wait until no process of these groups is left, or the deadline; the groups still alive."""
    left = list(processes)
    while True:
        for process in left:
            process.poll()  # reap the leader, or its group never empties
        left = [process for process in left if group_alive(process.pid)]
        if not left or time.monotonic() >= deadline or hurry():
            return left
        time.sleep(0.05)


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on host:port (bound as the servers bind: TIME_WAIT is no obstacle)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def local_address(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host  # noqa: S104


def web_answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/login/")
        connection.getresponse().read()
    except OSError:
        return False
    finally:
        connection.close()
    return True


def smtp_answers(host: str, port: int) -> bool:
    try:
        with smtplib.SMTP(local_address(host), port, timeout=2) as client:
            client.noop()
    except (OSError, smtplib.SMTPException):
        return False
    return True


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
            if port_in_use(host, number):
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
        children = self.children(port, smtp_host, smtp_port)
        self.stopping = 0
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self.request_stop)
        for child in children:
            child.start(env)
        try:
            self.supervise(children, env, lambda: self.print_banner(port, demo))
        finally:
            self.stop(children)

    def request_stop(self, signum, frame) -> None:
        self.stopping += 1
        if self.stopping == 1:
            self.stderr.write("Stopping InboxHub (Ctrl-C again to kill every process at once)…")

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

    def children(self, port: int, smtp_host: str, smtp_port: int) -> list[Child]:
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
            # Within STOP_TIMEOUT_SECONDS: requests in flight finish before the port is let go.
            "--graceful-timeout",
            "5",
            "--access-logfile",
            "-",
        ]
        children = [
            Child("web", web, probe=lambda: web_answers(port)),
            Child("smtp", [*manage, "runsmtp"], probe=lambda: smtp_answers(smtp_host, smtp_port)),
        ]
        if settings.REDIS_URL:
            celery = [sys.executable, "-m", "celery", "-A", "inboxhub"]
            concurrency = os.environ.get("WORKER_CONCURRENCY", "1")
            beat_schedule = str(settings.VAR_DIR / "beat")
            children += [
                Child("worker", [*celery, "worker", "--concurrency", concurrency, "--loglevel", "INFO"]),
                Child("beat", [*celery, "beat", "--loglevel", "INFO", "--schedule", beat_schedule]),
            ]
        return children

    def supervise(self, children: list[Child], env: dict[str, str], on_ready) -> None:
        announced = False
        sweep: subprocess.Popen | None = None
        last_sweep = time.monotonic()
        while not self.stopping:
            now = time.monotonic()
            for child in children:
                self.look_after(child, env, now)
            if not announced and all(child.ready for child in children):
                on_ready()
                announced = True
            # Without Redis there is no beat: sweep left-over spool rows from here.
            if not settings.REDIS_URL and now - last_sweep > SWEEP_EVERY_SECONDS:
                if sweep is None or sweep.poll() is not None:
                    sweep = subprocess.Popen(  # noqa: S603
                        [sys.executable, "manage.py", "sweep_inbound", "--verbosity", "0"],
                        env=env,
                        start_new_session=True,
                    )
                last_sweep = now
            time.sleep(TICK_SECONDS)
        if sweep is not None:
            stop_groups([sweep], STOP_TIMEOUT_SECONDS)

    def look_after(self, child: Child, env: dict[str, str], now: float) -> None:
        """Restart a child that died (with backoff); notice when a (re)started one serves its port."""
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.start(env)
            return
        if not child.running:
            self.schedule_restart(child, now)
            return
        if not child.ready and child.probe():
            child.ready = True
            if child.failures:
                logger.info("%s answers again", child.name)
        elif not child.ready and not child.slow_start_logged and now - child.started_at > SLOW_START_SECONDS:
            logger.warning("%s has not answered after %s s; still waiting", child.name, SLOW_START_SECONDS)
            child.slow_start_logged = True

    def schedule_restart(self, child: Child, now: float) -> None:
        code = child.process.returncode
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        # What is left of its group (gunicorn workers of a killed master) must let go of the port first.
        stop_groups([child.process], STOP_TIMEOUT_SECONDS)
        if now - child.started_at >= STABLE_AFTER_SECONDS:
            child.failures = 0
        delay = min(RESTART_FIRST_DELAY_SECONDS * 2**child.failures, RESTART_MAX_DELAY_SECONDS)
        child.failures += 1
        child.ready = child.probe is None
        child.restart_at = time.monotonic() + delay
        logger.error("%s stopped (%s); restarting it in %s s", child.name, how, delay)

    def stop(self, children: list[Child]) -> None:
        started = [child.process for child in children if child.process is not None]
        stop_groups(started, STOP_TIMEOUT_SECONDS, hurry=lambda: self.stopping > 1)
        self.stderr.write("InboxHub stopped.")

    def print_banner(self, port: int, demo: bool) -> None:
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
        self.stdout.write("\n".join(lines))
