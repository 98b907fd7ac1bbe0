"""The whole product's memory (issue 18): `make run`'s processes at rest and under a burst of mail.

    .venv/bin/python bench/footprint.py [--messages 1000] [--web-load 8 --rate 50]

Re-creates the database `inboxhub_bench_footprint`, flushes a Redis database of
its own, and starts what `make run` starts (`manage.py runall`, demo mode, with
REDIS_URL unless --no-redis) on free ports. Once it says it is running and the
demo's mail is worked off, it reads RSS and PSS of every process of its tree
from /proc/<pid>/smaps_rollup (at rest); then sends a burst of mail over SMTP
and samples the tree until every message is processed (peak). With --web-load,
afterwards N client threads load the web app (an agent's inbox page, over and
over) while mail comes at --rate messages/s: the end-to-end latency of mail
under a busy web app. Prints one JSON line; bench/README.md explains it.
"""

import argparse
import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import redis

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RUNNING = "InboxHub is running."
DEMO_LOGIN = ("admin@acme.example", "inboxhub-demo")

# The message generator, sender and latency reader of the ingest benchmark (by path: `ingest` is an app).
_spec = importlib.util.spec_from_file_location("bench_ingest", BASE_DIR / "bench" / "ingest.py")
bench_ingest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_ingest)
from tests.dkimkeys import generate_dkim_key  # noqa: E402  (bench_ingest put BASE_DIR on sys.path)

# A logged-in browser session over plain HTTP, from the inbox-page benchmark.
_spec = importlib.util.spec_from_file_location("bench_inbox", BASE_DIR / "bench" / "inbox.py")
bench_inbox = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_inbox)

free_port = bench_ingest.free_port
percentile = bench_ingest.percentile
recreate_database = bench_ingest.recreate_database
database_url = bench_ingest.database_url


# --- the process tree ----------------------------------------------------------------


def stat_of(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def tree_of(root: int) -> dict[int, int]:
    """Every live process under root (root included): pid → parent pid."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := stat_of(int(entry.name))) and found[0] != "Z":
            parents[int(entry.name)] = found[1]
    tree = {root: parents.get(root, 0)} if root in parents else {}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree[pid] = parent
                grew = True
    return tree


def command_of(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    return ""


def role_of(pid: int, tree: dict[int, int], root: int) -> str:
    """A readable name: supervisor, web, web worker, smtp, worker, worker pool, schedule…"""
    if pid == root:
        return "supervisor"
    command = command_of(pid)
    parent = tree.get(pid)
    if parent == root:
        for word, role in (
            ("gunicorn", "web"),
            ("runsmtp", "smtp"),
            ("runschedule", "schedule"),
            (" beat", "beat"),
            ("worker", "worker"),
        ):
            if word in command:
                return role
        return command[:40]
    above = role_of(parent, tree, root) if parent in tree else "?"
    return {"web": "web worker", "worker": "worker pool"}.get(above, f"{above} child")


def memory_of(pid: int) -> dict[str, int] | None:
    """Rss and Pss of a process in KiB, from smaps_rollup (Pss shares each page among its users)."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                values[key] = int(rest.split()[0])
    except (OSError, ValueError):
        return None
    return values if len(values) == 2 else None


def snapshot(root: int) -> list[dict]:
    tree = tree_of(root)
    processes = []
    for pid in sorted(tree):
        memory = memory_of(pid)
        if memory:
            processes.append({"pid": pid, "role": role_of(pid, tree, root), **memory})
    return processes


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


def summary(processes: list[dict]) -> dict:
    return {
        "rss_mib": mib(sum(p["Rss"] for p in processes)),
        "pss_mib": mib(sum(p["Pss"] for p in processes)),
        "processes": [
            {"role": p["role"], "pid": p["pid"], "rss_mib": mib(p["Rss"]), "pss_mib": mib(p["Pss"])}
            for p in processes
        ],
    }


class Sampler(threading.Thread):
    """Reads the tree every `every` seconds; keeps the snapshot with the largest total PSS and each
    process's largest RSS and PSS."""

    def __init__(self, root: int, every: float = 0.25):
        super().__init__(daemon=True)
        self.root, self.every = root, every
        self.halt = threading.Event()
        self.largest: list[dict] = []
        self.per_process: dict[int, dict] = {}

    def run(self) -> None:
        while not self.halt.is_set():
            processes = snapshot(self.root)
            if sum(p["Pss"] for p in processes) > sum(p["Pss"] for p in self.largest):
                self.largest = processes
            for p in processes:
                seen = self.per_process.setdefault(p["pid"], dict(p))
                seen["Rss"], seen["Pss"] = max(seen["Rss"], p["Rss"]), max(seen["Pss"], p["Pss"])
            self.halt.wait(self.every)

    def stop(self) -> dict:
        self.halt.set()
        self.join()
        return summary(self.largest) | {
            "largest_per_process": [
                {"role": p["role"], "pid": p["pid"], "rss_mib": mib(p["Rss"]), "pss_mib": mib(p["Pss"])}
                for p in sorted(self.per_process.values(), key=lambda p: p["pid"])
            ]
        }


# --- running make run --------------------------------------------------------------


class Product:
    """`manage.py runall` as `make run` starts it, in a session of its own, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(  # noqa: S603
                [PYTHON, "manage.py", "runall"],
                cwd=BASE_DIR,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until_running(self, timeout: float = 300) -> float:
        started = time.monotonic()
        while RUNNING not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() - started > timeout:
                self.stop()
                sys.exit(f"make run did not start; see {self.log}")
            time.sleep(0.2)
        return time.monotonic() - started

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)  # Ctrl-C
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            for pid in [self.process.pid, *map(int, re.findall(r"pid (\d+)", self.log.read_text()))]:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def spool_pending(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM channels_conn_inboundmessage WHERE state NOT IN ('processed', 'failed')"
        ).fetchone()[0]


def wait_until_worked_off(dsn: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if spool_pending(dsn) == 0:
            return True
        time.sleep(0.5)
    return False


def fallback_addresses(dsn: str) -> list[str]:
    """Acme's default inbox's address first (forwards go there), then the others."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT address FROM channels_conn_fallbackaddress "
            "ORDER BY address LIKE 'support@acme.%' DESC, id"
        ).fetchall()
    return [address for (address,) in rows]


# --- a busy web app --------------------------------------------------------------------


class WebLoad:
    """N threads, each a logged-in agent who requests the inbox page as fast as it is answered."""

    def __init__(self, port: int, clients: int):
        self.base = f"http://127.0.0.1:{port}"
        self.clients = clients
        self.halt = threading.Event()
        self.times: list[float] = []
        self.errors = 0
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(clients)]

    def client(self) -> None:
        browser = bench_inbox.Client(self.base)
        browser.login(*DEMO_LOGIN)
        while not self.halt.is_set():
            started = time.monotonic()
            try:
                status, _headers, _body = browser.get("/a/acme/")
            except OSError:
                status = 0
            if status == 200:
                self.times.append(time.monotonic() - started)
            else:
                self.errors += 1

    def __enter__(self):
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.halt.set()
        for thread in self.threads:
            thread.join(timeout=60)
        self.elapsed = time.monotonic() - self.started

    def figures(self) -> dict:
        return {
            "clients": self.clients,
            "requests_per_s": round(len(self.times) / self.elapsed, 1),
            "p50_ms": round(percentile(self.times, 50) * 1000, 1),
            "p99_ms": round(percentile(self.times, 99) * 1000, 1),
            "errors": self.errors,
        }


# --- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description="Memory of `make run`'s processes at rest and at peak.")
    parser.add_argument("--messages", type=int, default=1000, help="mail in the burst (peak)")
    parser.add_argument("--clients", type=int, default=8, help="SMTP client threads of the burst")
    parser.add_argument("--settle", type=float, default=15, help="seconds of quiet before reading 'at rest'")
    parser.add_argument("--no-redis", action="store_true", help="`make run` without REDIS_URL")
    parser.add_argument("--web-load", type=int, default=0, help="then: N threads loading the web app …")
    parser.add_argument("--rate", type=float, default=50, help="… while mail comes at this many messages/s")
    parser.add_argument("--loaded-messages", type=int, default=1000, help="… this many")
    parser.add_argument("--worker-concurrency", default=None, help="WORKER_CONCURRENCY (default: make run's)")
    parser.add_argument(
        "--worker-cpu-priority", default=None, help="WORKER_CPU_PRIORITY (default: the setting's)"
    )
    parser.add_argument("--database", default="inboxhub_bench_footprint")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    # 11–15 are the test suite's (DESIGN.md).
    parser.add_argument("--redis-db", type=int, default=7)
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()

    dsn = database_url(args.postgres, args.database)
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    workdir = Path(tempfile.mkdtemp(prefix="inboxhub-footprint-"))
    web_port, smtp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "TRUSTED_NETWORKS"}}
    env |= {
        "LOCAL_RUN": "true",  # as `make run`
        "DATABASE_URL": dsn,
        "REDIS_URL": "" if args.no_redis else redis_url,
        "VAR_DIR": str(workdir / "var"),
        "PORT": str(web_port),
        "SMTP_INGRESS_PORT": str(smtp_port),
        "LOG_LEVEL": "WARNING",
    }
    for variable, value in (
        ("WORKER_CONCURRENCY", args.worker_concurrency),
        ("WORKER_CPU_PRIORITY", args.worker_cpu_priority),
    ):
        if value is not None:
            env[variable] = value
    recreate_database(args.postgres, args.database)
    if not args.no_redis:
        redis.Redis.from_url(redis_url).flushdb()
    load_before = os.getloadavg()[0]
    product = Product(env, workdir / "make-run.log")
    output: dict = {"redis": not args.no_redis, "cores": os.cpu_count()}
    try:
        output["start_s"] = round(product.wait_until_running(), 1)
        output["demo_worked_off"] = wait_until_worked_off(dsn, timeout=300)
        time.sleep(args.settle)
        output["at_rest"] = summary(snapshot(product.process.pid))

        addresses = fallback_addresses(dsn)
        keys = generate_dkim_key()
        plan = bench_ingest.plan_messages
        member = ("Ada Lovelace", "ada@acme.example")
        burst = plan(args.messages, seed=args.seed, addresses=addresses, member=member, keys=keys)
        sampler = Sampler(product.process.pid)
        sampler.start()
        results = bench_ingest.send_all(smtp_port, burst, clients=args.clients, rate=None)
        accepted = sum(1 for r in results if r and r.code == 250)
        worked_off = wait_until_worked_off(dsn, timeout=120 + args.messages / 5)
        output["peak"] = sampler.stop()
        e2e = bench_ingest.end_to_end(dsn, burst, results)
        output["burst"] = {
            "messages": args.messages,
            "accepted": accepted,
            "worked_off": worked_off,
            "missing": e2e["missing"],
            "processed_per_s": e2e["processed_per_s"],
        } | {key: value for key, value in bench_ingest.rate_of(results).items() if key != "codes"}

        if args.web_load:
            paced = plan(
                args.loaded_messages, seed=args.seed + 1, addresses=addresses, member=member, keys=keys
            )
            with WebLoad(web_port, args.web_load) as load:
                time.sleep(3)  # logged in and busy before the mail comes
                results = bench_ingest.send_all(smtp_port, paced, clients=4, rate=args.rate)
                worked_off = wait_until_worked_off(dsn, timeout=120 + args.loaded_messages / 5)
            e2e = bench_ingest.end_to_end(dsn, paced, results)
            sent = bench_ingest.rate_of(results)
            output["under_web_load"] = {
                "rate": args.rate,
                "messages": args.loaded_messages,
                "worked_off": worked_off,
                "missing": e2e["missing"],
                "smtp_p99_ms": sent.get("smtp_p99_ms"),
                "e2e_p50_ms": e2e["e2e_p50_ms"],
                "e2e_p99_ms": e2e["e2e_p99_ms"],
                "e2e_max_ms": e2e["e2e_max_ms"],
                "web": load.figures(),
            }
    finally:
        product.stop()
        if not args.no_redis:
            redis.Redis.from_url(redis_url).flushdb()
    output["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    output["logs"] = str(workdir)
    print(json.dumps(output))


if __name__ == "__main__":
    main()
