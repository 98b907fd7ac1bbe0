"""InboxHub against django-helpdesk 2.6.1, side by side (issue 18 point 5): the same mail, the same run.

    .venv/bin/python bench/side_by_side.py [--messages 2000] [--rounds 1] [--skip-peer | --skip-inboxhub]
    .venv/bin/python bench/side_by_side.py --worker-cpu-priority 0   # InboxHub's workers not at idle priority

One corpus for both (bench/ingest.py's generator, DKIM-signed), by default the
issue's mix (`--mix issue`): 2,000 mails in 919 threads, 23.8 KB on average (a
third carry a 50 KB PDF), 1,081 replies, of which 30 % (`--recent-replies`;
307) answer a message sent within the 20 mails before them, so a reply may be
taken up while its parent still waits in the backlog. `--mix ingest` is
bench/ingest.py's own mix (about 1,630 threads of 2,000, 9.8 KB on average).

A round runs both, one right after the other, each on a fresh database:

- InboxHub as `make run` starts it (`manage.py runall`: demo mode, Redis on
  database `--redis-db`, a Celery worker with `--concurrency auto` at the
  default WORKER_CPU_PRIORITY, idle; free ports; database `inboxhub_bench_peer`).
  Once the demo's mail is worked off and it has been quiet for `--settle` s,
  RSS and PSS of every process (at rest); then the corpus over SMTP to the
  demo's fallback addresses (8 sessions at once), sampling the tree every
  0.25 s (peak PSS), until every mail is a message in a conversation.
  Rate: mails ÷ (first `MAIL` → last spool row processed).
- django-helpdesk 2.6.1 in a throwaway venv (`--venv`, made on first use and
  reused), with a minimal Django project generated into a temp dir (PostgreSQL
  database `helpdesk_bench_peer` on the same server, console mail backend like
  InboxHub's without EMAIL_HOST, teams mode off as pinax-teams is an optional
  extra). One queue per address the corpus writes to, `email_box_type` local,
  each reading a maildir into which the same mails are written before the
  clock starts; then `manage.py get_email` once, timed from its start to its
  exit, sampled for PSS; its peak RSS and CPU from `wait4`. At rest: one idle
  process of the project with helpdesk's mail code imported (the peer has no
  daemon: get_email is a cron job). Rate: mails ÷ get_email's run.

Then each side's `pg_database_size` (and growth, largest tables), and its
size after `VACUUM FULL` once InboxHub's compaction (every minute) has looked
at every processed row: what each database holds (InboxHub's also after a plain
`VACUUM` before: what autovacuum gives back by itself). Attachments on disk,
counts (conversations and messages; tickets and followups; mails missing;
replies stored in their parent's thread) and CPU per mail: its own processes'
by role, and the PostgreSQL backends' serving its database.
Prints one JSON line: both rates and `ratio` (InboxHub ÷ peer),
`cpu_per_mail_ratio` (the peer's CPU per mail ÷ InboxHub's, PostgreSQL's
included: what other work on the machine skews least), memory at rest and
peak, sizes, counts, and the 1-minute load average before and after. Other
work on the machine starves InboxHub's idle-priority workers (not get_email,
at normal priority): read `ratio` with `loadavg_1m`.

get_email reads a local folder in os.listdir order (hashed on ext4), not in
the order mail came, so a reply read before its parent opens a ticket of its
own (`replies_read_before_parent`); InboxHub threads a reply that comes first.
"""

import argparse
import contextlib
import importlib.util
import json
import mailbox
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PEER = "django-helpdesk==2.6.1"
MEMBER = ("Ada Lovelace", "ada@acme.example")
# The demo's fallback addresses, acme's default inbox first: for --skip-inboxhub (else from its database).
DEMO_ADDRESSES = [
    "support@acme.inbox.localhost",
    "sales@acme.inbox.localhost",
    "support@globex.inbox.localhost",
]


def load(name: str):
    """A sibling benchmark, by path (`ingest` is also the product's app)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BASE_DIR / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_ingest = load("ingest")
footprint = load("footprint")
from tests.dkimkeys import generate_dkim_key  # noqa: E402  (bench_ingest put BASE_DIR on sys.path)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- what both sides share ---------------------------------------------------------------


def database_size(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def vacuum(dsn: str) -> int:
    """The database's size once plain VACUUM has freed dead rows and cut empty pages off the tables' ends."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM")
    return database_size(dsn)


def vacuum_full(dsn: str) -> int:
    """The database's size once every table is rewritten without dead rows: what it holds."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM FULL")
    return database_size(dsn)


def wait_until_compacted(dsn: str, timeout: float) -> bool:
    """Whether every processed spool row was looked at by the compaction (ingest.compaction) in time."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            left = conn.execute(
                "SELECT count(*) FROM channels_conn_inboundmessage "
                "WHERE state = 'processed' AND raw_compacted IS NULL"
            ).fetchone()[0]
            if not left:
                return True
            time.sleep(1)
    return False


def bytes_under(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def cpu_of(pid: int) -> float:
    """User + system CPU of a process and of its children it reaped, in seconds (/proc/<pid>/stat)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(value) for value in fields[11:15]) / CLOCK_TICKS  # utime stime cutime cstime
    return 0.0


def cpu_by_role(root: int) -> dict[str, float]:
    """CPU seconds of each process of a tree, summed per role (web, smtp, worker pool…)."""
    tree = footprint.tree_of(root)
    roles: Counter = Counter()
    for pid in tree:
        roles[footprint.role_of(pid, tree, root)] += cpu_of(pid)
    return roles


class DatabaseCpu(threading.Thread):
    """CPU of the PostgreSQL backends serving one database, from the first read to stop().

    Backends come and go (get_email's lives as long as it does), so each is read every 0.25 s
    and its last reading kept; a backend seen at the start counts from that reading."""

    def __init__(self, name: str):
        super().__init__(daemon=True)
        self.marker = f" {name} "
        self.halt = threading.Event()
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.read(start=True)

    def read(self, start: bool = False) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if command.startswith("postgres: ") and self.marker in command:
                    pid = int(entry.name)
                    self.last[pid] = cpu_of(pid)
                    if start:
                        self.first[pid] = self.last[pid]

    def run(self) -> None:
        while not self.halt.wait(0.25):
            self.read()

    def stop(self) -> float:
        self.halt.set()
        self.join()
        self.read()
        return sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())


def largest_tables(dsn: str, count: int = 6) -> dict[str, float]:
    """The largest tables with their indexes and TOAST, in MB."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = 'public'::regnamespace ORDER BY 2 DESC LIMIT %s",
            [count],
        ).fetchall()
    return {name: mb(size) for name, size in rows}


def mb(size: int) -> float:
    return round(size / 1e6, 1)


def memory(figures: dict) -> dict:
    """Total RSS and PSS, and each process as [role, RSS, PSS] (MiB), from a footprint summary."""
    processes = [[p["role"], p["rss_mib"], p["pss_mib"]] for p in figures["processes"]]
    return {"rss_mib": figures["rss_mib"], "pss_mib": figures["pss_mib"], "processes": processes}


def describe_corpus(messages: list) -> dict:
    sizes = [len(m.raw) for m in messages]
    replies = [m for m in messages if m.parent is not None]
    window = bench_ingest.RECENT_WINDOW
    return {
        "mails": len(messages),
        "kinds": dict(Counter(m.kind for m in messages)),
        # Each reply joins its parent's thread; everything else starts one.
        "threads": len(messages) - len(replies),
        "mean_kb": round(statistics.mean(sizes) / 1024, 1),
        "total_mb": mb(sum(sizes)),
        "replies": len(replies),
        f"replies_to_one_of_previous_{window}": sum(1 for m in replies if m.index - m.parent <= window),
        "recipients": dict(Counter(m.rcpt for m in messages)),
    }


def replies_in_parent_thread(messages: list, thread_of: dict[str, int]) -> int:
    """Replies stored in the same conversation (or ticket) as the message they answer."""
    ids = {m.index: m.message_id for m in messages}
    return sum(
        1
        for m in messages
        if m.parent is not None
        and m.message_id in thread_of
        and thread_of[m.message_id] == thread_of.get(ids[m.parent])
    )


# --- InboxHub, as `make run` starts it --------------------------------------------------


def run_inboxhub(args, workdir: Path, corpus: dict) -> dict:
    dsn = bench_ingest.database_url(args.postgres, args.database)
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    web_port, smtp_port = footprint.free_port(), footprint.free_port()
    drop = {"DATABASE_URL", "REDIS_URL", "TRUSTED_NETWORKS", "WORKER_CONCURRENCY", "WORKER_CPU_PRIORITY"}
    if args.worker_cpu_priority is not None:
        drop.discard("WORKER_CPU_PRIORITY")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {
        "LOCAL_RUN": "true",  # as `make run`
        "DATABASE_URL": dsn,
        "REDIS_URL": redis_url,
        "VAR_DIR": str(workdir / "var"),
        "PORT": str(web_port),
        "SMTP_INGRESS_PORT": str(smtp_port),
        "LOG_LEVEL": "WARNING",
    }
    if args.worker_cpu_priority is not None:
        env["WORKER_CPU_PRIORITY"] = args.worker_cpu_priority
    bench_ingest.recreate_database(args.postgres, args.database)
    redis.Redis.from_url(redis_url).flushdb()
    product = footprint.Product(env, workdir / "make-run.log")
    figures: dict = {}
    try:
        figures["start_s"] = round(product.wait_until_running(), 1)
        if not footprint.wait_until_worked_off(dsn, timeout=300):
            sys.exit(f"the demo's mail was not worked off; see {product.log}")
        time.sleep(args.settle)
        figures["at_rest"] = memory(footprint.summary(footprint.snapshot(product.process.pid)))
        if "messages" not in corpus:
            corpus["messages"] = plan(args, footprint.fallback_addresses(dsn))
        messages = corpus["messages"]
        size_before = database_size(dsn)
        cpu_before = cpu_by_role(product.process.pid)
        database_cpu = DatabaseCpu(args.database)
        database_cpu.start()
        sampler = footprint.Sampler(product.process.pid)
        sampler.start()
        results = bench_ingest.send_all(smtp_port, messages, clients=args.clients, rate=None)
        accepted = sum(1 for r in results if r and r.code == 250)
        worked_off = footprint.wait_until_worked_off(dsn, timeout=120 + len(messages) / 2)
        figures["peak"] = memory(sampler.stop())
        server_cpu = database_cpu.stop()
        cpu_after = cpu_by_role(product.process.pid)
        cpu = {role: cpu_after[role] - cpu_before.get(role, 0.0) for role in cpu_after}
        figures |= inboxhub_counts(dsn, messages, results)
        figures |= {
            "accepted": accepted,
            "worked_off": worked_off,
            "worker_cpu_priority": env.get("WORKER_CPU_PRIORITY", "default (idle)"),
            "cpu_s": round(sum(cpu.values()), 1),
            "cpu_ms_per_mail": round(1000 * sum(cpu.values()) / len(messages), 1),
            "cpu_ms_per_mail_by_role": {role: round(1000 * v / len(messages), 1) for role, v in cpu.items()},
            "postgres_cpu_ms_per_mail": round(1000 * server_cpu / len(messages), 1),
            "database_mb_before": mb(size_before),
            "database_mb": mb(database_size(dsn)),
            "database_growth_mb": mb(database_size(dsn) - size_before),
            "largest_tables_mb": largest_tables(dsn),
            "attachments_on_disk_mb": mb(bytes_under(workdir / "var" / "media")),
        }
        # The steady state: processed mail compacted (every minute), then the space given back.
        waited = time.monotonic()
        figures["compacted"] = wait_until_compacted(dsn, timeout=180)
        figures["compacted_after_s"] = round(time.monotonic() - waited, 1)
        compaction_cpu = sum(cpu_by_role(product.process.pid).values()) - sum(cpu_after.values())
        figures["cpu_ms_per_mail_waiting_and_compacting"] = round(1000 * compaction_cpu / len(messages), 1)
        time.sleep(5)  # the compaction's own VACUUM, after a big batch, follows its last rows
        figures["database_mb_compacted"] = mb(database_size(dsn))
        # What autovacuum comes to without anyone's help: the space given back where it can be.
        figures["database_mb_after_compaction_and_vacuum"] = mb(vacuum(dsn))
        figures["database_mb_after_vacuum_full"] = mb(vacuum_full(dsn))
        figures["largest_tables_mb_after_vacuum_full"] = largest_tables(dsn)
    finally:
        product.stop()
        redis.Redis.from_url(redis_url).flushdb()
    figures["log"] = str(product.log)
    return figures


def inboxhub_counts(dsn: str, messages: list, results: list) -> dict:
    """Rate (first MAIL → last processed), what the corpus became, and replies in their parent's thread."""
    ids = [m.message_id for m in messages]
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT m.message_id, m.conversation_id, extract(epoch FROM i.processed_at), "
            "extract(epoch FROM i.claimed_at) "
            "FROM inboxes_message m JOIN channels_conn_inboundmessage i ON i.id = m.inbound_id "
            "WHERE m.message_id = ANY(%s)",
            [ids],
        ).fetchall()
        states = dict(
            conn.execute("SELECT state, count(*) FROM channels_conn_inboundmessage GROUP BY state").fetchall()
        )
    thread_of = {message_id: conversation for message_id, conversation, _, _ in rows}
    processed_at = {message_id: float(at) for message_id, _, at, _ in rows if at is not None}
    claimed_at = {message_id: float(at) for message_id, _, _, at in rows if at is not None}
    ids_by_index = {m.index: m.message_id for m in messages}
    # The case several workers make: a reply taken up while the message it answers is not stored yet.
    before_parent = sum(
        1
        for m in messages
        if m.parent is not None
        and claimed_at.get(m.message_id, 0) < processed_at.get(ids_by_index[m.parent], 0)
    )
    last = max(processed_at.values(), default=None)
    first = min((r.started for r in results if r), default=None)
    elapsed = last - first if last and first else None
    return {
        "rate_per_s": round(len(rows) / elapsed, 1) if elapsed else None,
        "elapsed_s": round(elapsed, 1) if elapsed else None,
        "messages": len(rows),
        "missing": len(set(ids) - set(thread_of)),
        "conversations": len(set(thread_of.values())),
        "replies_in_parent_thread": replies_in_parent_thread(messages, thread_of),
        "replies_taken_before_parent_stored": before_parent,
        "spool_states": states,
    }


# --- django-helpdesk 2.6.1 --------------------------------------------------------------

SETTINGS = """\
from pathlib import Path

SECRET_KEY = "side-by-side-bench"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.humanize",
    "rest_framework",
    "helpdesk",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "benchsite.urls"
TEMPLATES = [
    {{
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {{
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        }},
    }}
]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.postgresql", "NAME": {name!r},
    "USER": {user!r}, "HOST": {host!r}, "PORT": {port!r}}}}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SITE_ID = 1
STATIC_URL = "/static/"
MEDIA_ROOT = {media!r}
LOGIN_URL = "/helpdesk/login/"
# Mail the helpdesk sends (acknowledgements) goes to stdout, as InboxHub's does without EMAIL_HOST.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
# Teams need the optional pinax-teams extra.
HELPDESK_TEAMS_MODE_ENABLED = False
"""

URLS = """\
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("helpdesk/", include("helpdesk.urls", namespace="helpdesk")),
]
"""

MANAGE = """\
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""

# One queue per address, each reading its own maildir's new/ (get_email lists the files of that folder).
MAKE_QUEUES = """\
import json
from helpdesk.models import Queue
for slug, address, folder in json.loads(SPEC):
    Queue.objects.create(title=address, slug=slug, email_address=address, email_box_type="local",
                         email_box_local_dir=folder, allow_email_submission=True)
"""

IDLE = """\
import time
import helpdesk.email
print("ready", flush=True)
time.sleep(600)
"""


class Peer:
    """django-helpdesk in its venv, with a project generated for it into `root`."""

    def __init__(self, args, root: Path):
        self.venv = Path(args.venv)
        self.python = str(self.venv / "bin" / "python")
        self.root = root
        self.dsn = bench_ingest.database_url(args.postgres, args.peer_database)
        self.args = args

    def install(self) -> None:
        """The venv, made once and reused (`--venv`)."""
        check = [
            self.python,
            "-c",
            "import helpdesk, psycopg, importlib.metadata as m; print(m.version('django-helpdesk'))",
        ]
        found = (
            subprocess.run(check, capture_output=True, text=True, check=False) if self.venv.exists() else None
        )
        if found and found.stdout.strip() == PEER.split("==")[1]:
            return
        shutil.rmtree(self.venv, ignore_errors=True)
        subprocess.run([PYTHON, "-m", "venv", str(self.venv)], check=True)
        pip = [self.python, "-m", "pip", "install", "--quiet", PEER, "psycopg[binary]"]
        result = subprocess.run(pip, capture_output=True, text=True, check=False)
        if result.returncode:
            sys.exit(f"helpdesk: pip install failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")

    def generate(self) -> None:
        parts = urlsplit(self.dsn)
        package = self.root / "benchsite"
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")
        settings = SETTINGS.format(
            name=self.args.peer_database,
            user=parts.username or "postgres",
            host=parts.hostname or "127.0.0.1",
            port=str(parts.port or 5432),
            media=str(self.root / "media"),
        )
        (package / "settings.py").write_text(settings)
        (package / "urls.py").write_text(URLS)
        (self.root / "manage.py").write_text(MANAGE)

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [self.python, "manage.py", *args], cwd=self.root, capture_output=True, text=True, check=False
        )
        if result.returncode:
            sys.exit(
                f"helpdesk: manage.py {args[0]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def fresh(self, messages: list) -> list[Path]:
        """A new database with one queue per address, and each queue's maildir holding its mail."""
        bench_ingest.recreate_database(self.args.postgres, self.args.peer_database)
        shutil.rmtree(self.root / "media", ignore_errors=True)
        shutil.rmtree(self.root / "mail", ignore_errors=True)
        self.manage("migrate", "--verbosity", "0")
        (self.root / "mail").mkdir()
        queues = []
        for number, address in enumerate(dict.fromkeys(m.rcpt for m in messages)):
            box = mailbox.Maildir(self.root / "mail" / f"q{number}", create=True)
            queues.append((f"q{number}", address, box))
        for message in messages:
            next(box for _, address, box in queues if address == message.rcpt).add(message.raw)
        spec = [(slug, address, str(self.root / "mail" / slug / "new")) for slug, address, _ in queues]
        self.manage("shell", "-c", MAKE_QUEUES.replace("SPEC", repr(json.dumps(spec))))
        return [Path(folder) for _, _, folder in spec]

    def at_rest(self) -> dict:
        """RSS and PSS of one idle process of the project with helpdesk's mail code imported."""
        idle = subprocess.Popen(  # noqa: S603
            [self.python, "manage.py", "shell", "-c", IDLE], cwd=self.root, stdout=subprocess.PIPE, text=True
        )
        try:
            for line in idle.stdout:  # the shell first says what it imported automatically
                if line.strip() == "ready":
                    break
            else:
                sys.exit("helpdesk: the idle process did not start")
            time.sleep(2)
            at_rest = footprint.summary(footprint.snapshot(idle.pid))
            return {"rss_mib": at_rest["rss_mib"], "pss_mib": at_rest["pss_mib"], "processes": 1}
        finally:
            idle.kill()
            idle.wait()

    def get_email(self, log: Path) -> dict:
        """`manage.py get_email` once: wall time, peak PSS (sampled), peak RSS and CPU (wait4)."""
        database_cpu = DatabaseCpu(self.args.peer_database)
        database_cpu.start()
        with log.open("wb") as output:
            started = time.monotonic()
            process = subprocess.Popen(  # noqa: S603
                [self.python, "manage.py", "get_email"],
                cwd=self.root,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            sampler = footprint.Sampler(process.pid)
            sampler.start()
            _, status, usage = os.wait4(process.pid, 0)
            elapsed = time.monotonic() - started
            process.returncode = os.waitstatus_to_exitcode(status)
        peak = sampler.stop()
        server_cpu = database_cpu.stop()
        if process.returncode:
            sys.exit(f"helpdesk: get_email exited {process.returncode}; see {log}")
        cpu = usage.ru_utime + usage.ru_stime
        return {
            "elapsed_s": round(elapsed, 1),
            # One process: its peak RSS (VmHWM, from wait4) and the largest PSS sampled.
            "peak": {"rss_mib": round(usage.ru_maxrss / 1024, 1), "pss_mib": peak["pss_mib"], "processes": 1},
            "cpu_s": round(cpu, 1),
            "postgres_cpu_s": round(server_cpu, 1),
        }

    def counts(self, messages: list) -> dict:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT message_id, ticket_id, id FROM helpdesk_followup WHERE message_id = ANY(%s)",
                [[f"<{m.message_id}>" for m in messages]],
            ).fetchall()
            tickets = conn.execute("SELECT count(*) FROM helpdesk_ticket").fetchone()[0]
            followups = conn.execute("SELECT count(*) FROM helpdesk_followup").fetchone()[0]
            attachments = conn.execute("SELECT count(*) FROM helpdesk_followupattachment").fetchone()[0]
        thread_of = {message_id.strip("<>"): ticket for message_id, ticket, _ in rows}
        # get_email reads a folder in os.listdir order (hashed on ext4), not in the order mail came.
        order = {message_id.strip("<>"): number for message_id, _, number in rows}
        ids = {m.index: m.message_id for m in messages}
        before_parent = sum(
            1
            for m in messages
            if m.parent is not None and order.get(m.message_id, 0) < order.get(ids[m.parent], 0)
        )
        return {
            "tickets": tickets,
            "followups": followups,
            "followup_attachments": attachments,
            "missing": len({m.message_id for m in messages} - set(thread_of)),
            "replies_in_parent_thread": replies_in_parent_thread(messages, thread_of),
            "replies_read_before_parent": before_parent,
        }


def run_peer(args, workdir: Path, messages: list, peer: Peer) -> dict:
    folders = peer.fresh(messages)
    figures: dict = {"at_rest": peer.at_rest()}
    size_before = database_size(peer.dsn)
    figures |= peer.get_email(workdir / "get_email.log")
    figures["rate_per_s"] = round(len(messages) / figures["elapsed_s"], 1)
    figures["cpu_ms_per_mail"] = round(1000 * figures["cpu_s"] / len(messages), 1)
    figures["postgres_cpu_ms_per_mail"] = round(1000 * figures.pop("postgres_cpu_s") / len(messages), 1)
    figures |= peer.counts(messages)
    figures |= {
        "left_in_maildir": sum(len(list(folder.iterdir())) for folder in folders),
        "database_mb_before": mb(size_before),
        "database_mb": mb(database_size(peer.dsn)),
        "database_growth_mb": mb(database_size(peer.dsn) - size_before),
        "largest_tables_mb": largest_tables(peer.dsn),
        "attachments_on_disk_mb": mb(bytes_under(peer.root / "media")),
        "database_mb_after_vacuum_full": mb(vacuum_full(peer.dsn)),
        "log": str(workdir / "get_email.log"),
    }
    return figures


# --- main --------------------------------------------------------------------------------


def plan(args, addresses: list[str]) -> list:
    started = time.monotonic()
    messages = bench_ingest.plan_messages(
        args.messages,
        seed=args.seed,
        addresses=addresses,
        member=MEMBER,
        keys=generate_dkim_key(),
        mix=bench_ingest.ISSUE_MIX if args.mix == "issue" else None,
        recent_replies=args.recent_replies,
    )
    print(f"corpus: {len(messages)} mails in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description="InboxHub against django-helpdesk on the same mail.")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument(
        "--rounds", type=int, default=1, help="both sides each round; the median ratio stands"
    )
    parser.add_argument("--skip-peer", action="store_true", help="InboxHub only")
    parser.add_argument("--skip-inboxhub", action="store_true", help="django-helpdesk only")
    parser.add_argument("--mix", choices=["issue", "ingest"], default="issue")
    parser.add_argument("--recent-replies", type=float, default=0.3, help="share of replies to recent mail")
    parser.add_argument("--clients", type=int, default=8, help="SMTP sessions at once (InboxHub)")
    parser.add_argument(
        "--worker-cpu-priority",
        default=None,
        help="InboxHub's WORKER_CPU_PRIORITY (default: the setting's, idle)",
    )
    parser.add_argument("--settle", type=float, default=15, help="seconds of quiet before 'at rest'")
    venv = Path(tempfile.gettempdir()) / "inboxhub-bench-django-helpdesk-2.6.1"
    parser.add_argument("--venv", default=str(venv), help="made on first use, then reused")
    parser.add_argument("--database", default="inboxhub_bench_peer")
    parser.add_argument("--peer-database", default="helpdesk_bench_peer")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    # 11–15 are the test suite's (DESIGN.md).
    parser.add_argument("--redis-db", type=int, default=10)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    if args.skip_peer and args.skip_inboxhub:
        parser.error("nothing to run")

    workdir = Path(tempfile.mkdtemp(prefix="inboxhub-side-by-side-"))
    peer = None
    if not args.skip_peer:
        peer = Peer(args, workdir / "helpdesk")
        peer.install()
        peer.generate()
    corpus: dict = {}
    if args.skip_inboxhub:
        corpus["messages"] = plan(args, DEMO_ADDRESSES)
    load_before = os.getloadavg()[0]
    rounds = []
    for number in range(args.rounds):
        logs = workdir / f"round-{number + 1}"
        logs.mkdir()
        figures: dict = {}
        if not args.skip_inboxhub:
            figures["inboxhub"] = run_inboxhub(args, logs, corpus)
        if peer is not None:
            # Right after InboxHub, on the same machine state: only adjacent runs compare.
            figures["peer"] = run_peer(args, logs, corpus["messages"], peer)
        if len(figures) == 2 and figures["peer"]["rate_per_s"] and figures["inboxhub"]["rate_per_s"]:
            figures["ratio"] = round(figures["inboxhub"]["rate_per_s"] / figures["peer"]["rate_per_s"], 2)
            # What the load of others does not skew: the peer's CPU per mail over InboxHub's, PostgreSQL's
            # included (InboxHub may use both cores, get_email one).
            figures["cpu_per_mail_ratio"] = round(
                sum(figures["peer"][k] for k in ("cpu_ms_per_mail", "postgres_cpu_ms_per_mail"))
                / sum(figures["inboxhub"][k] for k in ("cpu_ms_per_mail", "postgres_cpu_ms_per_mail")),
                2,
            )
        rounds.append(figures)
        print(json.dumps({"round": number + 1, **figures}), file=sys.stderr)
    median = sorted(rounds, key=lambda r: r.get("ratio", 0))[len(rounds) // 2]
    output = {
        "corpus": describe_corpus(corpus["messages"]),
        "rounds": len(rounds),
        **median,
        "cores": os.cpu_count(),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "workdir": str(workdir),
    }
    if len(rounds) > 1:
        output["per_round"] = [
            {
                "inboxhub_per_s": r.get("inboxhub", {}).get("rate_per_s"),
                "peer_per_s": r.get("peer", {}).get("rate_per_s"),
                "ratio": r.get("ratio"),
                "cpu_per_mail_ratio": r.get("cpu_per_mail_ratio"),
            }
            for r in rounds
        ]
    print(json.dumps(output))


if __name__ == "__main__":
    main()
