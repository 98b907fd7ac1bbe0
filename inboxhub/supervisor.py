"""`make run`'s supervisor: keeps web, SMTP ingress and worker running, and stops them all on Ctrl-C.

Standard library only, run as a script, so the one process that stays up all
along costs a few MiB rather than a whole Django (issue 18). `manage.py runall`
does what needs Django first (the checks, migrate, the demo, the banner's
addresses), then replaces itself with this, the children described as JSON:

    python -I -S inboxhub/supervisor.py '{"children": [...], "banner": "..."}'

(-I -S: no site-packages, no environment's PYTHON* options, and not its own folder on sys.path,
which holds inboxhub's celery.py.) Before that, `inboxhub.management.prefork` forks the children
from one loaded app and hands their pids on in the spec: this process adopts them (an exec keeps
a process's children its own).

Each child runs in a process group of its own, so a Ctrl-C reaches only this
process, which then stops every group and waits until no process of it is left
(a gunicorn worker outliving its master would hold the port). A child that
dies is restarted after a pause that doubles with each quick failure, and the
others keep running.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

# A child is restarted 1 s after it dies, then 2, 4 … up to 30 s while it keeps dying within a minute.
RESTART_FIRST_DELAY_SECONDS = 1
RESTART_MAX_DELAY_SECONDS = 30
STABLE_AFTER_SECONDS = 60
# On stop, children get SIGTERM and this long to finish (a worker's task is redelivered if cut short).
STOP_TIMEOUT_SECONDS = 10
TICK_SECONDS = 0.2
SLOW_START_SECONDS = 60
PROBE_TIMEOUT_SECONDS = 2
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def log(level: str, message: str) -> None:
    """A line as the Django processes write theirs (settings.LOGGING), without importing logging."""
    if LEVELS[level] >= LEVELS.get(os.environ.get("LOG_LEVEL", "INFO").strip().upper(), 20):
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f",{int(now % 1 * 1000):03d}"
        print(f"{stamp} {level} inboxhub.supervisor {message}", file=sys.stderr, flush=True)


def local_address(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host  # noqa: S104


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


def first_bytes(host: str, port: int, send: bytes = b"") -> bytes:
    """What a server says first (after `send`), b"" when nothing answers. Plain sockets: http.client
    and smtplib would bring the ssl and email modules into this process."""
    try:
        with socket.create_connection((local_address(host), port), timeout=PROBE_TIMEOUT_SECONDS) as sock:
            if send:
                sock.sendall(send)
            return sock.recv(64)
    except OSError:
        return b""


def web_answers(host: str, port: int) -> bool:
    request = f"GET /login/ HTTP/1.0\r\nHost: {local_address(host)}:{port}\r\n\r\n".encode()
    return first_bytes(host, port, request).startswith(b"HTTP/")


def smtp_answers(host: str, port: int) -> bool:
    return first_bytes(host, port).startswith(b"220")


PROBES = {"http": web_answers, "smtp": smtp_answers}


class Adopted:
    """A child forked before this process became the supervisor; what of `Popen` the supervisor uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: gone, how is not known
                self.returncode = 1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)


class Child:
    """One supervised command and the process group it runs in."""

    def __init__(
        self, name: str, command: list[str], probe: tuple[str, str, int] | None = None, pid: int | None = None
    ):
        self.name, self.command = name, command
        self.probe = probe  # ("http" or "smtp", host, port) it serves; None: no port
        self.forked_pid = pid  # already running, forked from the loaded app: adopted on the first start
        self.process: subprocess.Popen | Adopted | None = None
        self.started_at = 0.0
        self.failures = 0
        self.restart_at: float | None = None
        self.ready = False
        self.slow_start_logged = False

    def start(self) -> None:
        if self.forked_pid is not None:
            self.process, self.forked_pid = Adopted(self.forked_pid), None
        else:
            self.process = subprocess.Popen(self.command, start_new_session=True)  # noqa: S603
        self.started_at = time.monotonic()
        self.restart_at = None
        self.ready = self.probe is None
        self.slow_start_logged = False
        log("INFO", f"{self.name} started (pid {self.process.pid})")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def answers(self) -> bool:
        kind, host, port = self.probe
        return PROBES[kind](host, port)


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
    if not os.path.isdir("/proc"):
        return signal_group(pgid, 0)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/stat") as stat:
            # After the command's name in parentheses: state, parent, process group.
            state, _parent, group = stat.read().rsplit(")", 1)[1].split()[:3]
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


class Supervisor:
    """Starts the children, restarts the ones that die; stops all on a signal."""

    def __init__(self, children: list[Child], *, banner: str):
        self.children = children
        self.banner = banner
        self.stopping = 0

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self.request_stop)
        for child in self.children:
            child.start()
        try:
            self.supervise()
        finally:
            self.stop()
        return 0

    def request_stop(self, signum, frame) -> None:
        self.stopping += 1
        if self.stopping == 1:
            print(
                "Stopping InboxHub (Ctrl-C again to kill every process at once)…", file=sys.stderr, flush=True
            )

    def supervise(self) -> None:
        announced = False
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                self.look_after(child, now)
            if not announced and all(child.ready for child in self.children):
                print(self.banner, flush=True)
                announced = True
            time.sleep(TICK_SECONDS)

    def look_after(self, child: Child, now: float) -> None:
        """Restart a child that died (with backoff); notice when a (re)started one serves its port."""
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.start()
            return
        if not child.running:
            self.schedule_restart(child, now)
            return
        if not child.ready and child.answers():
            child.ready = True
            if child.failures:
                log("INFO", f"{child.name} answers again")
        elif not child.ready and not child.slow_start_logged and now - child.started_at > SLOW_START_SECONDS:
            log("WARNING", f"{child.name} has not answered after {SLOW_START_SECONDS} s; still waiting")
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
        log("ERROR", f"{child.name} stopped ({how}); restarting it in {delay} s")

    def stop(self) -> None:
        started = [child.process for child in self.children if child.process is not None]
        stop_groups(started, STOP_TIMEOUT_SECONDS, hurry=lambda: self.stopping > 1)
        print("InboxHub stopped.", file=sys.stderr, flush=True)


def supervisor_from(spec: dict) -> Supervisor:
    children = [
        Child(
            child["name"],
            child["command"],
            tuple(child["probe"]) if child.get("probe") else None,
            child.get("pid"),
        )
        for child in spec["children"]
    ]
    return Supervisor(children, banner=spec.get("banner", ""))


def become(spec: dict) -> None:
    """Replace the calling process (a Django one) with the supervisor of spec: same pid, so Ctrl-C, the
    terminal and the children forked so far see no change."""
    sys.stdout.flush()
    sys.stderr.flush()
    command = [sys.executable, "-I", "-S", os.path.abspath(__file__), json.dumps(spec)]
    os.execve(sys.executable, command, os.environ)  # noqa: S606


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: supervisor.py SPEC (JSON; `manage.py runall` writes it)", file=sys.stderr)
        return 2
    return supervisor_from(json.loads(argv[0])).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
