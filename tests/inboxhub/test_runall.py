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
from django.conf import settings

from tests.channels_conn.conftest import free_port

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
    finally:
        runall.kill_everything()
    return {"output": runall.output, "status_when_running": status, "smtp_env": smtp_env}


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
    assert len(group_members(web)) == 3  # gunicorn's master and its two workers
    assert runall.ctrl_c() == 0
    assert "InboxHub stopped." in runall.output
    assert group_members(web) == [] and group_members(smtp) == []
    assert not someone_listens(runall.port) and not someone_listens(runall.smtp_port)
