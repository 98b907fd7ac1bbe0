"""`make run` as a one-server install: real `manage.py runall` processes, free ports, SQLite in a tmp dir."""

import contextlib
import http.client
import os
import re
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings

from inboxhub import supervisor
from tests.channels_conn.conftest import free_port
from tests.channels_conn.test_faults_workers import own_redis_db

BASE_DIR = Path(settings.BASE_DIR)
DATABASE = "inboxhub.sqlite3"
RUNNING = "InboxHub is running."


def runall_env(var: Path, **overrides: str) -> dict[str, str]:
    # No REDIS_URL: the in-process tasks of a plain `make run`; no TRUSTED_NETWORKS: runall's own default.
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "TRUSTED_NETWORKS", "INBOXHUB_DEMO"}}
    env |= {"DJANGO_SETTINGS_MODULE": "inboxhub.settings", "DATABASE_URL": "", "VAR_DIR": str(var)}
    return env | {"PYTHONUNBUFFERED": "1"} | overrides


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """A migrated SQLite database each test copies, so runall's own migrate has nothing to do."""
    var = tmp_path_factory.mktemp("migrated")
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=BASE_DIR,
        env=runall_env(var),
        check=True,
        capture_output=True,
    )
    return var / DATABASE


class Runall:
    """One `manage.py runall` in a session of its own, as a terminal runs it; its output in a file."""

    def __init__(self, var: Path, *args: str, **env: str):
        ports = {"PORT": str(free_port()), "SMTP_INGRESS_PORT": str(free_port())} | env
        self.port, self.smtp_port = int(ports["PORT"]), int(ports["SMTP_INGRESS_PORT"])
        self.log = var / "runall.log"
        environment = runall_env(var, **ports)
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "manage.py", "runall", *args],
                cwd=BASE_DIR,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := re.search(pattern, self.output):
                return found
            assert self.process.poll() is None, self.output
            time.sleep(0.05)
        pytest.fail(f"no {pattern!r} within {timeout} s:\n{self.output}")

    def pid_of(self, child: str) -> int:
        """The pid of the child's latest start, as runall logs it."""
        return int(re.findall(rf"{child} started \(pid (\d+)\)", self.output)[-1])

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole group
        return self.process.wait(timeout=30)

    def kill_everything(self) -> None:
        for pid in [self.process.pid, *map(int, re.findall(r"started \(pid (\d+)\)", self.output))]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def start_runall(tmp_path, migrated) -> Iterator[Callable[..., Runall]]:
    started: list[Runall] = []

    def start(*args: str, **env: str) -> Runall:
        shutil.copy(migrated, tmp_path / DATABASE)
        started.append(Runall(tmp_path, *args, **env))
        return started[-1]

    yield start
    for runall in started:
        runall.kill_everything()


def web_answers(port: int) -> int | None:
    """The status of GET /login/, None when nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/login/")
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def someone_listens(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not someone listening
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def group_members(pgid: int) -> list[int]:
    """Processes of the group that still run (zombies excluded: nothing here reaps orphans)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" ", 1)
        except OSError:
            continue
        state, _parent, group = rest.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state != "Z":
            members.append(int(pid))
    return members


def environment_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode()
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def command_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


def memory_of(pid: int) -> dict[str, int]:
    """Rss and Pss in KiB (Pss: each page shared by n processes counts 1/n)."""
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    fields = {line.split(":")[0]: line.split(":")[1] for line in lines if ":" in line}
    return {key: int(fields[key].split()[0]) for key in ("Rss", "Pss")}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, migrated) -> dict:
    """One demo-mode `make run`, from a database without the demo, until it says it is running."""
    var = tmp_path_factory.mktemp("demo")
    shutil.copy(migrated, var / DATABASE)
    runall = Runall(var)
    try:
        runall.wait_for(RUNNING)
        # At once, as someone who read "running" would.
        status = web_answers(runall.port)
        smtp_env = environment_of(runall.pid_of("smtp"))
        children = {child: runall.pid_of(child) for child in ("web", "smtp")}
        child_commands = {child: command_of(pid) for child, pid in children.items()}
        child_memory = {child: memory_of(pid) for child, pid in children.items()}
        # The process that stays up, as /proc shows it: what it runs, and the files mapped into it.
        supervisor_command = Path(f"/proc/{runall.process.pid}/cmdline").read_bytes().split(b"\0")
        supervisor_maps = Path(f"/proc/{runall.process.pid}/maps").read_text()
        assignment_mail = mail_and_its_assignment_mail(runall, var)
    finally:
        runall.kill_everything()
    return {
        "assignment_mail": assignment_mail,
        "output": runall.output,
        "status_when_running": status,
        "smtp_env": smtp_env,
        "child_commands": child_commands,
        "child_memory": child_memory,
        "supervisor_command": [part.decode() for part in supervisor_command if part],
        "supervisor_maps": supervisor_maps,
    }


def mail_and_its_assignment_mail(runall: Runall, var: Path) -> tuple[str, str] | None:
    """Send a customer's mail to the demo's Acme inbox; its conversation's assignment mail (state and
    recipient) once the worker has settled it, else as it is after 30 s (None: there is none)."""
    with smtplib.SMTP("127.0.0.1", runall.smtp_port, timeout=10) as client:
        client.sendmail(
            "carla@customer.example",
            ["support@acme.inbox.localhost"],
            b"From: Carla <carla@customer.example>\r\nTo: support@acme.inbox.localhost\r\n"
            b"Subject: Where is order 1234?\r\nMessage-ID: <order-1234@customer.example>\r\n\r\nHello.\r\n",
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(var / DATABASE)) as db:
            row = db.execute(
                "SELECT state, \"to\" FROM inboxhub_outboundemail WHERE subject LIKE '%order 1234%'"
            ).fetchone()
        if row is not None and row[0] not in ("queued", "sending"):
            return row
        time.sleep(0.5)
    return row


def test_mail_over_smtp_is_assigned_and_the_assignee_mailed_on_the_embedded_database(demo_run):
    # SQLite keeps datetimes as text: a claim written by hand in another form than the ORM's
    # left the mail "sending" for ever, though it was sent.
    assert demo_run["assignment_mail"] is not None
    state, to = demo_run["assignment_mail"]
    assert state == "sent"
    assert to.endswith("@acme.example")


def test_make_run_says_before_anything_that_it_seeds_a_published_password_and_trusts_loopback(demo_run):
    output = demo_run["output"]
    warning = output.index(
        "Demo mode: seeds demo accounts whose password is published (inboxhub-demo) and trusts mail sent "
        "from 127.0.0.0/8 as authenticated."
    )
    assert warning < output.index("web started")
    assert "INBOXHUB_DEMO=0 make run" in output
    assert demo_run["smtp_env"]["TRUSTED_NETWORKS"] == "127.0.0.0/8"


def test_without_redis_the_console_carries_no_broker_warning(demo_run):
    # Seeding the demo's week of mail sends tasks in-process, as every sweep and reply does.
    assert "Acme › Inbox" in demo_run["output"]
    assert "No hostname was supplied" not in demo_run["output"]


def test_without_the_demo_no_account_is_seeded_and_no_network_trusted(start_runall, tmp_path):
    runall = start_runall(INBOXHUB_DEMO="0")
    runall.wait_for(RUNNING)
    assert "No demo: no demo accounts are seeded; no trusted networks." in runall.output
    assert "inboxhub-demo" not in runall.output
    assert "TRUSTED_NETWORKS" not in environment_of(runall.pid_of("smtp"))
    with sqlite3.connect(tmp_path / DATABASE) as db:
        assert db.execute("SELECT count(*) FROM inboxhub_account").fetchone() == (0,)


def test_running_is_said_only_once_the_web_port_answers(demo_run):
    assert demo_run["status_when_running"] == 200


def test_a_killed_web_server_is_restarted_while_the_ingress_keeps_running(start_runall):
    runall = start_runall("--no-demo")
    runall.wait_for(RUNNING)
    web, smtp = runall.pid_of("web"), runall.pid_of("smtp")
    os.kill(web, signal.SIGKILL)  # its gunicorn workers are left behind, holding the port
    runall.wait_for(r"web stopped \(killed by SIGKILL\); restarting it in 1 s")
    runall.wait_for(r"web answers again")
    assert runall.pid_of("web") != web and group_members(web) == []  # the old workers are gone
    assert web_answers(runall.port) == 200
    assert runall.pid_of("smtp") == smtp and smtp in group_members(smtp)
    with smtplib.SMTP("127.0.0.1", runall.smtp_port, timeout=10) as client:
        assert client.noop()[0] == 250
    assert runall.process.poll() is None


@pytest.mark.parametrize(("variable", "what"), [("PORT", "web"), ("SMTP_INGRESS_PORT", "SMTP")])
def test_a_busy_port_is_one_error_line(start_runall, variable, what):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runall = start_runall("--no-demo", **{variable: str(port)})
        assert runall.process.wait(timeout=30) == 1
    assert "Traceback" not in runall.output
    assert runall.output.strip().splitlines()[-1] == (
        f"CommandError: port {port} ({what}, 127.0.0.1) is already in use: stop what listens there, "
        f"or set {variable} to a free port."
    )


def test_ctrl_c_stops_every_process_and_frees_both_ports(start_runall):
    runall = start_runall("--no-demo")
    runall.wait_for(RUNNING)
    web, smtp = runall.pid_of("web"), runall.pid_of("smtp")
    # gunicorn's master and its two workers: the port answers once the first worker is up, the second
    # may still be forking on a loaded machine.
    deadline = time.monotonic() + 30
    while len(group_members(web)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(group_members(web)) == 3
    assert runall.ctrl_c() == 0
    assert "InboxHub stopped." in runall.output
    assert group_members(web) == [] and group_members(smtp) == []
    assert not someone_listens(runall.port) and not someone_listens(runall.smtp_port)


# --- issue 18: a small footprint, the cores used -----------------------------------------


def test_once_running_make_run_keeps_only_the_supervisor_without_django(demo_run):
    command = demo_run["supervisor_command"]
    assert command[1:4] == ["-I", "-S", supervisor.__file__]
    # Django's database drivers are extension modules: what ran migrate and the demo is gone.
    assert "sqlite3" not in demo_run["supervisor_maps"] and "psycopg" not in demo_run["supervisor_maps"]


def test_web_and_ingress_are_forked_from_one_loaded_app_and_share_most_of_their_memory(demo_run):
    # ps shows each as the command it runs, as when it was started on its own.
    assert demo_run["child_commands"]["smtp"] == f"{sys.executable} manage.py runsmtp"
    assert demo_run["child_commands"]["web"].startswith("gunicorn: master")
    # Started on its own, the ingress shared almost nothing (Pss 70 of 89 MiB Rss); forked, most of it.
    for child, memory in demo_run["child_memory"].items():
        assert memory["Pss"] < 0.6 * memory["Rss"], (child, memory)


def test_the_supervisor_imports_nothing_but_the_standard_library(tmp_path):
    spec = '{"children": [], "banner": "all up"}'
    log = tmp_path / "imports.log"
    with log.open("wb") as imports:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-X", "importtime", "-I", "-S", supervisor.__file__, spec],
            stdout=subprocess.PIPE,
            stderr=imports,
        )
    assert process.stdout.readline() == b"all up\n"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    # "import time: self [us] | cumulative | imported package", a line per module.
    modules = {line.rsplit("|", 1)[1].strip() for line in log.read_text().splitlines() if "|" in line}
    assert "socket" in modules and "subprocess" in modules
    assert not {m for m in modules if m.split(".")[0] in {"django", "celery", "inboxhub", "ssl", "email"}}
    assert "InboxHub stopped." in log.read_text()


@pytest.fixture
def own_redis() -> Iterator[str]:
    url = own_redis_db()
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
            if int(parent) == pid and state != "Z":
                found.append(int(stat.parent.name))
    return found


def autogroup_nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])  # "/autogroup-42 nice 19"


def test_with_redis_a_worker_per_core_sweeps_the_spool_without_a_beat_process(
    start_runall, tmp_path, own_redis
):
    runall = start_runall("--no-demo", REDIS_URL=own_redis)
    # A message the ingress committed whose task Redis lost: only the periodic sweep hands it on.
    leave_a_message_in_the_spool(tmp_path)
    runall.wait_for(RUNNING)
    runall.wait_for(r"celery@\S+ ready\.", timeout=120)
    worker = runall.pid_of("worker")
    children = children_of(runall.process.pid)
    assert sorted(children) == sorted([runall.pid_of("web"), runall.pid_of("smtp"), worker])
    assert len(children_of(worker)) == len(os.sched_getaffinity(0))  # one pool process per core
    # Below the web app and the ingress across sessions too (Linux autogroups), not only within its own.
    assert autogroup_nice(worker) > autogroup_nice(runall.pid_of("web")) == 0
    runall.wait_for(r"Sending due task sweep-inbound", timeout=120)
    # Handed to a worker and tried (it names no recipient, so it waits for its retry, then fails).
    assert tried_once(runall, tmp_path)


def test_without_redis_one_long_lived_process_keeps_the_schedule(start_runall, tmp_path):
    runall = start_runall("--no-demo")
    leave_a_message_in_the_spool(tmp_path)
    runall.wait_for(RUNNING)
    schedule = runall.pid_of("schedule")
    # The sweep runs on start, in-process: the message left behind is tried (and waits for its retry).
    assert tried_once(runall, tmp_path)
    # No interpreter started for it: the same process all along, no child of its own.
    assert sorted(children_of(runall.process.pid)) == sorted(
        [runall.pid_of("web"), runall.pid_of("smtp"), schedule]
    )
    assert children_of(schedule) == [] and runall.output.count("schedule started") == 1


LEFT_IN_THE_SPOOL = """
from datetime import timedelta
from django.utils import timezone
from channels_conn.models import InboundMessage
raw = b"From: a@customer.example\\r\\nSubject: left behind\\r\\n\\r\\nHello\\r\\n"
received_at = timezone.now() - timedelta(minutes=5)
InboundMessage.objects.create(raw=raw, size=len(raw), rcpt_tos=[], received_at=received_at)
"""


def leave_a_message_in_the_spool(var: Path) -> None:
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "shell", "-c", LEFT_IN_THE_SPOOL],
        cwd=BASE_DIR,
        env=runall_env(var),
        check=True,
    )


def tried_once(runall: Runall, var: Path) -> bool:
    """Whether the message left in the spool was tried within a minute (attempts 0 -> 1)."""
    deadline = time.monotonic() + 60
    while spool_attempts(var) == [0]:
        assert time.monotonic() < deadline, runall.output
        time.sleep(0.5)
    return spool_attempts(var) == [1]


def spool_attempts(var: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(var / DATABASE)) as db:
        return [attempts for (attempts,) in db.execute("SELECT attempts FROM channels_conn_inboundmessage")]
