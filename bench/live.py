"""Live updates (H5) under many open tabs: the web process's CPU and memory, and how fast a change shows.

    .venv/bin/python bench/live.py                                        # 200 tabs, counters in PostgreSQL
    .venv/bin/python bench/live.py --redis-url redis://127.0.0.1:6379/3   # counters in Redis
    .venv/bin/python bench/live.py --clients 50 --idle-seconds 10         # a quick look

Creates the database `inboxhub_bench_live` (`--database`) afresh, with one account, an agent and
`--conversations` conversations, and starts gunicorn as `make run` does (2 workers, 4 threads each;
`--workers`, `--threads`). Logs in once through the login form and reads the list page's live token
and counter, as a browser would. Then `--clients` tabs, each a keep-alive HTTP connection of its own,
do what static/js/live.js does: every `--poll-ms` ask the poll URL with `If-None-Match`, and on a
200 fetch the list fragment (the page's own URL, `HX-Target: inbox-list`, `changed_since` the value
shown: with Redis the answer holds only the changed rows, without it the whole list).

Phases, each printed as one JSON line:
  `server_idle`  no tab open: the web process's floor;
  `tabs_idle`    every tab polling, nothing changing: the cost of an open, idle tab;
  `changes`      a mail received every `--change-every` seconds (through the real receiving service,
                 in this process, committed, its counter bumped): every tab refetches its list; the
                 latency is from the commit to the fragment holding the new subject, per tab.
CPU is the web process's (gunicorn master and workers, from /proc: user + system) over the phase's
wall time; `cpu_pct_of_one_core_per_100_tabs` scales it. RSS is the sum over those processes.
The tabs run in this process (asyncio), so they take CPU from the same 2 cores: compare
`bench_cpu_pct` with the server's. Other work on the machine skews the latencies; CPU less so.
"""

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import serving  # bench/serving.py (this script's folder is first on sys.path)
from serving import database_url, free_port, recreate_database

BASE_DIR = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TICK = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench-live-password"  # noqa: S105 - a throwaway account on a throwaway database


# --- the database and Django ------------------------------------------------------------


def server_env(dsn: str, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "inboxhub.settings",
        "DATABASE_URL": dsn,
        "LOG_LEVEL": "WARNING",
        "LOCAL_RUN": "true",
        "AXES_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


def seed(conversations: int):
    """An account, its agent, and some conversations; returns (subdomain, inbox, agent email)."""
    from django.core.management import call_command
    from django_scopes import scope

    from inboxes.models import Inbox
    from inboxhub.models import Account
    from inboxhub.provisioning import provision_account

    call_command("migrate", verbosity=0)
    owner = provision_account(
        subdomain="benchlive",
        company_name="Bench Live",
        full_name="Bench Agent",
        email="agent@benchlive.example",
        password=PASSWORD,
        tier=Account.Tier.PROFESSIONAL,
    )
    with scope(account=owner.account):
        inbox = Inbox.objects.select_related("account").get(account=owner.account, is_default=True)
    for n in range(conversations):
        receive(inbox, f"Seeded question {n}")
    return owner.account.subdomain, inbox, owner.user.email


_ids = itertools.count(1)


def receive(inbox, subject: str) -> None:
    """A customer's mail, received as the ingest pipeline receives it (one transaction, committed)."""
    from django_scopes import scope

    from channels_conn.models import FallbackAddress
    from inboxes.receiving import receive_message
    from inboxhub.lib.mail.parsing import Address, ParsedMessage

    n = next(_ids)
    with scope(account=inbox.account):
        address = FallbackAddress.objects.get(account=inbox.account, channel__inbox=inbox).address
        parsed = ParsedMessage(
            message_id=f"bench{n}.{time.time_ns()}@customer.example",
            in_reply_to=[],
            references=[],
            subject=subject,
            sender=Address(name=f"Customer {n}", email=f"customer{n}@customer.example"),
            reply_to=[],
            to=[Address(name="", email=address)],
            cc=[],
            date=None,
            text="Hello, a question.",
            html="",
        )
        receive_message(inbox, parsed, recipient=address)


# --- the web process --------------------------------------------------------------------


def start_gunicorn(env: dict[str, str], port: int, workers: int, threads: int, log: Path) -> subprocess.Popen:
    return serving.start_gunicorn(env, port, log, "--workers", str(workers), "--threads", str(threads))


def process_tree(pid: int) -> list[int]:
    """The gunicorn master and its workers."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return round(total / 1024, 1)


# --- the tabs -----------------------------------------------------------------------------


class Tab:
    """One open list page: a keep-alive connection, a token, the counter value it shows."""

    def __init__(self, port: int, cookie: str, list_path: str, poll_path: str, token: str, stamp: str):
        self.port, self.cookie, self.list_path, self.poll_path = port, cookie, list_path, poll_path
        self.token, self.stamp = token, stamp
        self.reader = self.writer = None
        self.statuses: dict[int, int] = {}
        self.poll_ms: list[float] = []
        self.seen: set[str] = set()

    async def request(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", f"Cookie: {self.cookie}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            self.writer = None
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        answer = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            answer[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in answer:
            body = await self.reader.readexactly(int(answer["content-length"]))
        elif answer.get("transfer-encoding", "").lower() == "chunked":
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                body += await self.reader.readexactly(size)
                await self.reader.readline()
            await self.reader.readline()
        if answer.get("connection", "").lower() == "close":
            self.writer.close()
            self.writer = None
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return status, answer, body

    async def poll(self) -> bool:
        started = time.perf_counter()
        status, _, _ = await self.request(
            f"{self.poll_path}?t={self.token}",
            {"If-None-Match": f'"{self.stamp}"', "Cache-Control": "no-store"},
        )
        self.poll_ms.append((time.perf_counter() - started) * 1000)
        return status in (200, 403)

    async def refresh(self, changes: dict[str, float], latencies: list[float]) -> None:
        # As static/js/live.js on a first page: the rows changed since the value shown (with Redis).
        separator = "&" if "?" in self.list_path else "?"
        path = f"{self.list_path}{separator}changed_since={self.stamp}"
        _, _, body = await self.request(path, {"HX-Request": "true", "HX-Target": "inbox-list"})
        now = time.perf_counter()
        html = body.decode()
        tag = re.search(r'id="inbox-list(?:-changes)?"[^>]*', html).group(0)
        self.token = re.search(r'data-live-token="([^"]*)"', tag).group(1)
        self.stamp = re.search(r'data-live-stamp="([^"]*)"', tag).group(1)
        for subject, at in changes.items():
            if subject not in self.seen and subject in html:
                self.seen.add(subject)
                latencies.append((now - at) * 1000)

    async def run(self, period: float, stop: asyncio.Event, changes: dict, latencies: list) -> None:
        await asyncio.sleep(random.random() * period)  # tabs opened at different moments  # noqa: S311
        while not stop.is_set():
            tick = time.perf_counter()
            try:
                if await self.poll():
                    await self.refresh(changes, latencies)
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                self.writer = None
            await asyncio.sleep(max(0.0, period - (time.perf_counter() - tick)))


def login(port: int, email: str) -> tuple[str, str, str, str]:
    """Log in through the form; the session cookie, the list path, its token and counter."""
    import http.cookiejar
    import urllib.parse
    import urllib.request

    base = f"http://127.0.0.1:{port}"
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(base + "/login/", timeout=30).read()  # noqa: S310 - our own loopback server
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    data = urllib.parse.urlencode({"username": email, "password": PASSWORD, "csrfmiddlewaretoken": csrf})
    headers = {"Referer": base + "/login/"}
    request = urllib.request.Request(base + "/login/", data=data.encode(), headers=headers)  # noqa: S310
    with opener.open(request, timeout=30) as response:  # noqa: S310
        if "/login/" in response.url:
            sys.exit("logging in failed")
    list_path = "/a/benchlive/inbox/"
    html = opener.open(base + list_path, timeout=30).read().decode()  # noqa: S310
    tag = re.search(r'id="inbox-list"[^>]*', html).group(0)
    attrs = dict(re.findall(r'data-live-([a-z]+)="([^"]*)"', tag))
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    return cookie, list_path, attrs["poll"], attrs["token"], attrs["stamp"]


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))], 1)


async def phase(name, tabs, pids, seconds, period, inbox=None, change_every=0.0) -> dict:
    stop = asyncio.Event()
    changes: dict[str, float] = {}
    latencies: list[float] = []
    for tab in tabs:
        tab.statuses, tab.poll_ms = {}, []
    tasks = [asyncio.create_task(tab.run(period, stop, changes, latencies)) for tab in tabs]
    await asyncio.sleep(min(2.0, period * 2))  # every tab has started
    for tab in tabs:
        tab.statuses, tab.poll_ms = {}, []  # the phase's own requests only
    cpu0, bench0, wall0 = cpu_seconds(pids), time.process_time(), time.perf_counter()
    rss_peak = rss_mb(pids)
    next_change = wall0 + change_every if change_every else None
    while (now := time.perf_counter()) - wall0 < seconds:
        if next_change is not None and now >= next_change:
            subject = f"Live bench change {len(changes) + 1}"
            await asyncio.to_thread(receive, inbox, subject)
            changes[subject] = time.perf_counter()  # committed and bumped: the clock starts
            next_change += change_every
        await asyncio.sleep(0.05)
        rss_peak = max(rss_peak, rss_mb(pids))
    wall = time.perf_counter() - wall0
    cpu, bench_cpu = cpu_seconds(pids) - cpu0, time.process_time() - bench0
    stop.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(period)  # stragglers of the last change
    statuses: dict[int, int] = {}
    for tab in tabs:
        for status, n in tab.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    polls = [ms for tab in tabs for ms in tab.poll_ms]
    cpu_pct = cpu / wall * 100
    result = {
        "phase": name,
        "tabs": len(tabs),
        "seconds": round(wall, 1),
        "requests_per_s": round(sum(statuses.values()) / wall, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "web_cpu_pct_of_one_core": round(cpu_pct, 1),
        "web_cpu_ms_per_request": round(cpu * 1000 / max(1, sum(statuses.values())), 2),
        "web_rss_mb_peak": rss_peak,
        "bench_cpu_pct": round(bench_cpu / wall * 100, 1),
        "poll_p50_ms": percentile(polls, 50),
        "poll_p95_ms": percentile(polls, 95),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    if tabs:
        result["cpu_pct_of_one_core_per_100_tabs"] = round(cpu_pct * 100 / len(tabs), 1)
    if change_every:
        expected = len(changes) * len(tabs)
        result |= {
            "changes": len(changes),
            "seen": f"{len(latencies)}/{expected}",
            "live_latency_p50_ms": percentile(latencies, 50),
            "live_latency_p95_ms": percentile(latencies, 95),
            "live_latency_max_ms": percentile(latencies, 100),
        }
    return result


async def bench(args, pids, port, inbox, email) -> list[dict]:
    cookie, list_path, poll_path, token, stamp = login(port, email)
    period = args.poll_ms / 1000
    results = [await phase("server_idle", [], pids, args.idle_seconds, period)]
    tabs = [Tab(port, cookie, list_path, poll_path, token, stamp) for _ in range(args.clients)]
    results.append(await phase("tabs_idle", tabs, pids, args.idle_seconds, period))
    results.append(
        await phase(
            "changes", tabs, pids, args.change_seconds, period, inbox=inbox, change_every=args.change_every
        )
    )
    for tab in tabs:
        if tab.writer is not None:
            tab.writer.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark live updates with many open tabs.")
    parser.add_argument("--clients", type=int, default=200, help="open tabs, each its own connection")
    parser.add_argument("--poll-ms", type=int, default=1000, help="as static/js/live.js (POLL_MS)")
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--change-seconds", type=float, default=30)
    parser.add_argument("--change-every", type=float, default=5.0, help="seconds between two new mails")
    parser.add_argument("--conversations", type=int, default=60, help="seeded before the tabs open")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (make run: 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (make run: 4)")
    parser.add_argument("--redis-url", help="counters in this Redis database (never 11-15: the tests')")
    parser.add_argument("--database", default="inboxhub_bench_live")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    if args.redis_url and urlsplit(args.redis_url).path.strip("/") in {"11", "12", "13", "14", "15"}:
        sys.exit("Redis databases 11-15 are the test suite's; choose another")

    recreate_database(args.postgres, args.database)
    env = server_env(database_url(args.postgres, args.database), args.redis_url)
    setup_django(env)
    if args.redis_url:
        import redis

        client = redis.Redis.from_url(args.redis_url)
        stale = client.keys("inboxhub:live:*")
        if stale:
            client.delete(*stale)
    subdomain, inbox, email = seed(args.conversations)
    port = free_port()
    log = BASE_DIR / "var" / "bench-live-gunicorn.log"
    log.parent.mkdir(exist_ok=True)
    server = start_gunicorn(env, port, args.workers, args.threads, log)
    try:
        time.sleep(2)  # workers booted
        pids = process_tree(server.pid)
        results = asyncio.run(bench(args, pids, port, inbox, email))
    finally:
        server.terminate()
        server.wait(timeout=30)
    for result in results:
        print(json.dumps(result))
    idle = results[1]
    print(
        json.dumps(
            {
                "summary": "live",
                "counters": "redis" if args.redis_url else "postgresql",
                "tabs": args.clients,
                "poll_ms": args.poll_ms,
                "idle_cpu_pct_of_one_core_per_100_tabs": idle.get("cpu_pct_of_one_core_per_100_tabs"),
                "idle_extra_rss_mb": round(idle["web_rss_mb_peak"] - results[0]["web_rss_mb_peak"], 1),
                "web_rss_mb": idle["web_rss_mb_peak"],
                "live_latency_p95_ms": results[2].get("live_latency_p95_ms"),
                "changes_cpu_pct_of_one_core": results[2]["web_cpu_pct_of_one_core"],
                "median_poll_ms": statistics.median(
                    [r["poll_p50_ms"] for r in results[1:] if r["poll_p50_ms"]]
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
