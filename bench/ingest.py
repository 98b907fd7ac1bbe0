"""Ingestion benchmark (issues 4 and 8): real runsmtp and Celery workers, concurrent SMTP clients.

    .venv/bin/python bench/ingest.py [--clients 8] [--messages 2000] [--rate 50] [--auth on|off] [--pairs 4]

Re-creates the database `inboxhub_bench`, migrates it and seeds the demo
accounts; starts `manage.py runsmtp` and `celery -A inboxhub worker` on a Redis
database of its own; N client threads send M generated messages (plain, HTML,
replies, members' forwards, 50 KB attachments) to it and the same messages to
a baseline server that only inserts them into one table (bench/baseline_smtp.py),
alternating between the two in pairs of short segments (ABBA) within each round.
Prints one JSON line; bench/README.md explains it.
"""

import argparse
import contextlib
import itertools
import json
import math
import os
import random
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dkim
import psycopg
import redis
from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
from tests.dkimkeys import Key, generate_dkim_key  # noqa: E402

PYTHON = sys.executable
ATTACHMENT_BYTES = 50 * 1024
# A session sends this many messages before QUIT, as MTAs reuse connections for a while.
MESSAGES_PER_SESSION = 10
DKIM_SELECTOR = "bench"
CUSTOMER_DOMAINS = [f"customer{n}.example" for n in range(1, 11)]
HELO = "mta.bench.example"
# What each kind of message is worth in the mix; replies and forwards need earlier messages.
MIX = {"plain": 35, "html": 20, "reply": 20, "forward": 15, "attachment": 10}
# Near issue 18's corpus (about 900 threads, 26 KB on average): 919 threads, 23.8 KB at 2,000 mails.
ISSUE_MIX = {"plain": 7, "html": 4, "reply": 55, "forward": 2, "attachment": 32}
# Message-IDs of the mail that warms the servers up before the clock; no figure counts them.
WARMUP_PREFIX = "warmup"
# A reply "to a recent message" answers one of the messages sent at most this many mails before it.
RECENT_WINDOW = 20
WORDS = [
    "order",
    "invoice",
    "delivery",
    "account",
    "please",
    "thanks",
    "question",
    "refund",
    "shipping",
    "update",
    "contract",
    "renewal",
    "meeting",
    "tomorrow",
    "support",
    "ticket",
    "issue",
    "printer",
    "login",
    "password",
    "export",
    "report",
    "monthly",
    "quarter",
    "customer",
    "urgent",
    "help",
    "problem",
    "team",
    "schedule",
    "call",
    "follow",
    "review",
    "change",
    "request",
    "payment",
    "overdue",
]
FIRST_NAMES = ["Ingrid", "Per", "Maria", "Jonas", "Aiko", "Carlos", "Fatima", "Liam", "Noor", "Olga"]
LAST_NAMES = ["Svensson", "Holm", "Garcia", "Weber", "Tanaka", "Silva", "Haddad", "Murphy", "Khan", "Ivanova"]


# --- processes -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{proc.args} exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.1)
    sys.exit(f"nothing listened on {port} within {timeout} s:\n{log.read_text()[-3000:]}")


def wait_for_text(log: Path, text: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{proc.args} exited:\n{log.read_text()[-3000:]}")
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    sys.exit(f"{text!r} not seen within {timeout} s:\n{log.read_text()[-3000:]}")


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A server of the product (or the baseline) in a session of its own, as `make run` and each
    container start them: Linux shares the CPU between sessions first (autogroups)."""
    with log.open("wb") as output:
        return subprocess.Popen(
            args, cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a live process, in KiB."""
    values = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(value.split()[0])
    return values


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            # The parent pid is the second field after the parenthesised command name.
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def mib(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


# --- the database --------------------------------------------------------------------


def database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(base: str, name: str) -> None:
    with psycopg.connect(database_url(base, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# --- messages ------------------------------------------------------------------------


@dataclass
class Planned:
    index: int
    kind: str
    mail_from: str
    rcpt: str
    message_id: str  # without angle brackets, as inboxes.Message stores it
    raw: bytes
    parent: int | None = None  # a reply's: the index of the message it answers


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def paragraphs(rng: random.Random, count: int) -> list[str]:
    return [
        " ".join(sentence(rng, rng.randint(6, 14)) for _ in range(rng.randint(2, 5))) for _ in range(count)
    ]


def wrap(text: str, width: int = 72) -> str:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*lines, line])


def plan_messages(
    count: int,
    *,
    seed: int,
    addresses: list[str],
    member: tuple[str, str],
    keys: Key,
    mix: dict[str, int] | None = None,
    recent_replies: float = 0.0,
    prefix: str = "bench",
):
    """M messages in sending order; generated before the clock starts (signing costs RSA time).

    `mix` weighs the kinds (default MIX). A reply answers a message sent a while
    ago, except that with `recent_replies` > 0 that share of the replies answers
    one sent within the RECENT_WINDOW mails before it, as a conversation going
    back and forth does: several workers may then take a reply while its parent
    still waits in the backlog. The defaults give the same messages as before.
    """
    rng = random.Random(seed)
    run = f"{seed:x}{int(time.time()):x}"
    people = [
        (f"{first} {last}", f"{first.lower()}.{last.lower()}@{rng.choice(CUSTOMER_DOMAINS)}")
        for first, last in itertools.product(FIRST_NAMES, LAST_NAMES)
    ]
    kinds = [kind for kind, weight in (mix or MIX).items() for _ in range(weight)]
    sent: list[tuple[Planned, str, str, str]] = []  # replyable: planned, sender name, subject, text
    planned = []
    for index in range(count):
        kind = rng.choice(kinds)
        if kind == "reply" and len(sent) < 50:
            kind = "plain"
        # A reply answers a message sent a while ago, as people do, so it usually finds its thread.
        parent = None
        if kind == "reply":
            recent = [s for s in sent[-RECENT_WINDOW:] if s[0].index >= index - RECENT_WINDOW]
            # No draw when recent_replies is 0, so the default mix stays what it was.
            if recent_replies and recent and rng.random() < recent_replies:
                parent = rng.choice(recent)
            else:
                parent = rng.choice(sent[: len(sent) - 40])
        name, sender = (parent[1], parent[0].mail_from) if parent else rng.choice(people)
        rcpt = parent[0].rcpt if parent else rng.choice(addresses)
        if kind == "forward":
            name, sender = member
            rcpt = addresses[0]
        domain = sender.rsplit("@", 1)[1]
        message_id = f"{prefix}-{run}-{index}@{domain}"
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = formataddr((name, sender))
        msg["To"] = rcpt
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = f"<{message_id}>"
        text = "\n\n".join(wrap(p) for p in paragraphs(rng, rng.randint(1, 4)))
        subject = sentence(rng, rng.randint(3, 7)).rstrip(".")
        if kind == "reply":
            subject = f"Re: {parent[2]}"
            msg["In-Reply-To"] = f"<{parent[0].message_id}>"
            msg["References"] = f"<{parent[0].message_id}>"
            quoted = "\n".join(f"> {line}" for line in parent[3].splitlines())
            text = f"{text}\n\n{parent[1]} wrote:\n{quoted}"
        elif kind == "forward":
            original_name, original = rng.choice(people)
            subject_original = subject
            subject = f"Fwd: {subject_original}"
            text = (
                f"Hi team, can someone take this one? Thanks, {name.split()[0]}\n\n"
                "---------- Forwarded message ---------\n"
                f"From: {original_name} <{original}>\n"
                "Date: Mon, Mar 4, 2024 at 10:15 AM\n"
                f"Subject: {subject_original}\n"
                f"To: Acme Support <support@acme.example>\n\n\n{text}\n"
            )
        msg["Subject"] = subject
        msg.set_content(text)
        if kind == "html":
            html = "".join(f'<p style="margin:0 0 1em">{p}</p>\n' for p in text.split("\n\n"))
            msg.add_alternative(
                f'<html><body><div dir="ltr">{html}<a href="https://{domain}/help">Help</a>'
                f'<img src="https://{domain}/logo.png" alt="logo"></div></body></html>',
                subtype="html",
            )
        elif kind == "attachment":
            msg.add_attachment(
                rng.randbytes(ATTACHMENT_BYTES),
                maintype="application",
                subtype="pdf",
                filename=f"{rng.choice(WORDS)}-{index}.pdf",
            )
        raw = msg.as_bytes()
        signature = dkim.sign(
            raw,
            DKIM_SELECTOR.encode(),
            domain.encode(),
            keys.private_pem,
            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
        )
        one = Planned(
            index, kind, sender, rcpt, message_id, signature + raw, parent[0].index if parent else None
        )
        planned.append(one)
        if kind in ("plain", "html"):
            sent.append((one, name, subject, text))
    return planned


# --- the authentication DNS (issue 8) ------------------------------------------------


def start_dns(keys: Key, member_domain: str):
    """A loopback DNS server with SPF, DKIM and DMARC for every domain the benchmark sends from."""
    from tests.dnsserver import DNSServer

    server = DNSServer().start()
    for domain in [*CUSTOMER_DOMAINS, member_domain, HELO]:
        server.add_txt(domain, "v=spf1 ip4:127.0.0.0/8 -all")
        server.add_txt(f"_dmarc.{domain}", "v=DMARC1; p=reject; adkim=r; aspf=r")
        server.add_txt(f"{DKIM_SELECTOR}._domainkey.{domain}", keys.public_record)
    return server


# --- sending -------------------------------------------------------------------------


@dataclass
class Sent:
    code: int
    started: float
    answered: float
    reply: str


def send_all(port: int, messages: list[Planned], *, clients: int, rate: float | None) -> list[Sent | None]:
    """Send every message over `clients` threads; with `rate`, message i leaves at t0 + i/rate."""
    results: list[Sent | None] = [None] * len(messages)
    counter = itertools.count()
    lock = threading.Lock()
    t0 = time.monotonic() + 0.2

    def client(number: int) -> None:
        session = None
        in_session = 0
        while True:
            with lock:
                index = next(counter)
            if index >= len(messages):
                break
            if rate:
                time.sleep(max(0.0, t0 + index / rate - time.monotonic()))
            message = messages[index]
            started = time.time()
            try:
                if session is None:
                    session = smtplib.SMTP("127.0.0.1", port, timeout=120)
                    session.ehlo(HELO)
                    in_session = 0
                code, reply = session.mail(message.mail_from)
                if code == 250:
                    code, reply = session.rcpt(message.rcpt)
                if code == 250:
                    code, reply = session.data(message.raw)
                else:
                    session.rset()
            except smtplib.SMTPResponseException as error:
                code, reply = error.smtp_code, error.smtp_error
            except (OSError, smtplib.SMTPException) as error:
                code, reply, session = 0, str(error).encode(), None
            results[index] = Sent(code, started, time.time(), reply.decode(errors="replace"))
            in_session += 1
            if session is not None and in_session >= MESSAGES_PER_SESSION:
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    session.quit()
                session = None
        if session is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                session.quit()

    threads = [threading.Thread(target=client, args=(n,), name=f"client-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def accepted(results: list[Sent | None]) -> int:
    return sum(1 for r in results if r and r.code == 250)


def sending_time(results: list[Sent | None]) -> float:
    """From the first MAIL to the last 250 (0 when nothing was accepted)."""
    answered = [r.answered for r in results if r and r.code == 250]
    return max(answered) - min(r.started for r in results if r) if answered else 0.0


def rate_of(results: list[Sent | None], segments: list[range] | None = None) -> dict:
    """Accepted messages per second of sending; with `segments` (index ranges sent one after the
    other, with pauses between), the time is the sum of each segment's own."""
    accepted = [r for r in results if r and r.code == 250]
    codes: dict[str, int] = {}
    for r in results:
        key = str(r.code if r else "none")
        codes[key] = codes.get(key, 0) + 1
    if not accepted:
        return {"accepted": 0, "codes": codes, "accepted_per_s": 0.0}
    elapsed = sum(sending_time(results[s.start : s.stop]) for s in segments or [range(len(results))])
    session_times = sorted(r.answered - r.started for r in accepted)
    return {
        "accepted": len(accepted),
        "codes": codes,
        "elapsed_s": round(elapsed, 2),
        "accepted_per_s": round(len(accepted) / elapsed, 1),
        "smtp_p50_ms": round(percentile(session_times, 50) * 1000, 1),
        "smtp_p99_ms": round(percentile(session_times, 99) * 1000, 1),
    }


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    # Nearest rank: the smallest value with at least pct % of the values at or below it.
    rank = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


# --- runs ----------------------------------------------------------------------------


def wait_processed(dsn: str, expected: int, timeout: float) -> int:
    """Wait until `expected` spool rows are processed or failed; returns how many are."""
    deadline = time.monotonic() + timeout
    done = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            done = conn.execute(
                "SELECT count(*) FROM channels_conn_inboundmessage WHERE state IN ('processed', 'failed')"
            ).fetchone()[0]
            if done >= expected:
                break
            time.sleep(0.25)
    return done


def end_to_end(
    dsn: str, messages: list[Planned], results: list[Sent | None], segments: list[range] | None = None
) -> dict:
    """Latency from the client's 250 to the spool row marked processed, by Message-ID.

    processed_at is written in the transaction that creates the Message
    (before that, right after it committed, which bounded the moment from above).
    Warm-up messages (Message-IDs starting WARMUP_PREFIX) are left out of every
    figure. With `segments`, `processed_per_s` counts each segment's time, from
    its first MAIL to its last message processed, and not the pauses between.
    """
    warmup = {"warmup": f"{WARMUP_PREFIX}-%"}
    with psycopg.connect(dsn, autocommit=True) as conn:

        def grouped(column: str) -> dict:
            query = "SELECT {}, count(*) FROM inboxes_message WHERE message_id NOT LIKE %(warmup)s GROUP BY 1"
            return dict(conn.execute(sql.SQL(query).format(sql.Identifier(column)), warmup).fetchall())

        rows = conn.execute(
            "SELECT m.message_id, extract(epoch FROM i.processed_at), extract(epoch FROM m.created_at) "
            "FROM inboxes_message m JOIN channels_conn_inboundmessage i ON i.id = m.inbound_id "
            "WHERE m.message_id NOT LIKE %(warmup)s",
            warmup,
        ).fetchall()
        states = dict(
            conn.execute(
                "SELECT state, count(*) FROM channels_conn_inboundmessage i WHERE NOT EXISTS (SELECT 1 FROM "
                "inboxes_message m WHERE m.inbound_id = i.id AND m.message_id LIKE %(warmup)s) GROUP BY 1",
                warmup,
            ).fetchall()
        )
        threaded = grouped("threaded_by")
        attributed = grouped("attributed_by")
        verdicts = grouped("auth_verdict")
        conversations = conn.execute(
            "SELECT count(*) FROM inboxes_conversation c WHERE NOT EXISTS (SELECT 1 "
            "FROM inboxes_message m WHERE m.conversation_id = c.id AND m.message_id LIKE %(warmup)s)",
            warmup,
        ).fetchone()[0]
    visible = {message_id: float(processed) for message_id, processed, _ in rows if processed is not None}
    latencies = []
    missing = 0
    for message, sent in zip(messages, results, strict=True):
        if not sent or sent.code != 250:
            continue
        if message.message_id not in visible:
            missing += 1
            continue
        latencies.append(visible[message.message_id] - sent.answered)
    # Each segment's span, from its first MAIL to its last message processed; spans that overlap
    # (workers started only after sending) count once.
    spans = []
    for segment in segments or [range(len(messages))]:
        sent = messages[segment.start : segment.stop]
        done = [visible[m.message_id] for m in sent if m.message_id in visible]
        first = min((r.started for r in results[segment.start : segment.stop] if r), default=None)
        if done and first is not None:
            spans.append((first, max(done)))
    working, reached = 0.0, float("-inf")
    for start, end in sorted(spans):
        working += max(0.0, end - max(start, reached))
        reached = max(reached, end)
    return {
        "messages": len(rows),
        "conversations": conversations,
        "missing": missing,
        "spool_states": states,
        "threaded_by": threaded,
        "attributed_by": attributed,
        "auth_verdicts": {k or "(none)": v for k, v in verdicts.items()},
        "processed_per_s": round(len(visible) / working, 1) if working else None,
        "e2e_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "e2e_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "e2e_max_ms": round(max(latencies, default=float("nan")) * 1000, 1),
    }


@dataclass
class Product:
    port: int
    ingress: subprocess.Popen
    workers: list[tuple[subprocess.Popen, Path]]

    def pids(self) -> list[int]:
        return [
            self.ingress.pid,
            *(pid for worker, _ in self.workers for pid in [worker.pid, *children_of(worker.pid)]),
        ]


def start_workers(args, env: dict[str, str], logs: Path, product: Product) -> None:
    for number in range(args.workers):
        log = logs / f"worker{number}.log"
        worker = start(
            [
                *(PYTHON, "-m", "celery", "-A", "inboxhub", "worker"),
                *("--concurrency", str(args.concurrency), "--pool", args.pool),
                *("-n", f"bench{number}@%h", "-l", "info"),
                *("--without-gossip", "--without-mingle"),
            ],
            env,
            log,
        )
        product.workers.append((worker, log))
    for worker, log in product.workers:
        wait_for_text(log, " ready.", worker)


@contextlib.contextmanager
def product_running(args, env: dict[str, str], logs: Path) -> Iterator[Product]:
    """runsmtp, and the workers unless --workers-after-send; stopped on the way out."""
    port = free_port()
    smtp_log = logs / "runsmtp.log"
    product = Product(
        port,
        start([PYTHON, "manage.py", "runsmtp", "--host", "127.0.0.1", "--port", str(port)], env, smtp_log),
        [],
    )
    try:
        wait_for_port(port, product.ingress, smtp_log)
        if not args.workers_after_send:
            start_workers(args, env, logs, product)
        yield product
    finally:
        for worker, _ in product.workers:
            stop(worker)
        stop(product.ingress)


@contextlib.contextmanager
def baseline_running(dsn: str, logs: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    """bench/baseline_smtp.py and its port; stopped on the way out."""
    port = free_port()
    log = logs / "baseline.log"
    server = start(
        [PYTHON, str(BASE_DIR / "bench" / "baseline_smtp.py"), "--port", str(port), "--dsn", dsn],
        dict(os.environ),
        log,
    )
    try:
        wait_for_port(port, server, log)
        yield server, port
    finally:
        stop(server)


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            # utime and stime: the 12th and 13th fields after the parenthesised command name.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total


def wait_quiet(pids: list[int], *, pause: float, timeout: float = 20) -> None:
    """Wait until these processes use (almost) no CPU over `pause` seconds: what a segment leaves
    behind (the workers' assignment after their commit, the ingress's last round) is done."""
    deadline = time.monotonic() + timeout
    before = cpu_ticks(pids)
    while True:
        time.sleep(pause)
        after = cpu_ticks(pids)
        # Under 2 % of a core; a tick is 1/100 s on Linux.
        if after - before <= 2 * pause or time.monotonic() > deadline:
            return
        before = after


def slices(count: int, pairs: int) -> list[range]:
    return [range(k * count // pairs, (k + 1) * count // pairs) for k in range(pairs)]


def spread_pct(rates: list[float]) -> float | None:
    """max − min of a side's segment rates, as a share of their median."""
    middle = statistics.median(rates) if rates else 0
    return round(100 * (max(rates) - min(rates)) / middle, 1) if middle else None


def run_round(
    args, env: dict[str, str], dsn: str, messages: list[Planned], warmup: list[Planned], logs: Path
):
    """Product and sink both started and warmed up, then `--pairs` pairs of segments: pair k sends
    slice k of the messages to each side, the product first in even pairs and the sink first in
    odd ones (ABBA), so a drift of the machine over the round weighs on both alike. The product's
    backlog is worked off and every process quiet before each segment, as before a whole run; a
    pair's ratio compares two segments seconds apart, and the round's figure is their median."""
    pieces = slices(len(messages), args.pairs)
    sides = ["inboxhub"] if args.no_baseline else ["inboxhub", "baseline"]
    results: dict[str, list[Sent | None]] = {side: [None] * len(messages) for side in sides}
    segment_rates: dict[str, list[float]] = {side: [] for side in sides}
    orders = []
    with contextlib.ExitStack() as running:
        product = running.enter_context(product_running(args, env, logs))
        ports = {"inboxhub": product.port}
        sink = None
        if not args.no_baseline:
            sink, ports["baseline"] = running.enter_context(baseline_running(dsn, logs))
        # Before the clock, each side's database threads connect and its code paths run once (the
        # workers take their first tasks too); the warm-up mail counts in no figure.
        spooled = warmed = accepted(send_all(product.port, warmup, clients=args.clients, rate=None))
        if sink is not None:
            send_all(ports["baseline"], warmup, clients=args.clients, rate=None)

        def settle() -> None:
            if product.workers:
                wait_processed(dsn, spooled, timeout=120 + len(messages) / 5)
            wait_quiet([*product.pids(), *([sink.pid] if sink else [])], pause=args.settle)

        ingress_start = memory_kib(product.ingress.pid)
        for number, piece in enumerate(pieces):
            order = sides if number % 2 == 0 else sides[::-1]
            orders.append(order[0])
            for side in order:
                settle()
                sent = send_all(
                    ports[side],
                    messages[piece.start : piece.stop],
                    clients=args.clients,
                    rate=args.rate if side == "inboxhub" else None,
                )
                results[side][piece.start : piece.stop] = sent
                segment_rates[side].append(rate_of(sent)["accepted_per_s"])
                if side == "inboxhub":
                    spooled += accepted(sent)
        if args.workers_after_send:
            start_workers(args, env, logs, product)
        processed = wait_processed(dsn, spooled, timeout=120 + len(messages) / 5)
        ingress_end = memory_kib(product.ingress.pid)
        worker_memory = [memory_kib(pid) for pid in product.pids()[1:]]
        sink_peak = memory_kib(sink.pid).get("VmHWM") if sink else None
    ours = results["inboxhub"]
    figures = rate_of(ours, pieces) | end_to_end(dsn, messages, ours, pieces)
    figures["segments_per_s"] = segment_rates["inboxhub"]
    figures["segments_spread_pct"] = spread_pct(segment_rates["inboxhub"])
    figures["rows_done"] = processed - warmed
    figures["ingress_rss_start_mib"] = mib(ingress_start.get("VmRSS"))
    figures["ingress_rss_end_mib"] = mib(ingress_end.get("VmRSS"))
    figures["ingress_rss_growth_mib"] = mib(ingress_end.get("VmRSS", 0) - ingress_start.get("VmRSS", 0))
    figures["ingress_peak_rss_mib"] = mib(ingress_end.get("VmHWM"))
    figures["worker_peak_rss_mib"] = mib(max((m.get("VmHWM", 0) for m in worker_memory), default=None))
    figures["worker_processes"] = len(worker_memory)
    failures = [r.reply for r in ours if r and r.code != 250][:3]
    if failures:
        figures["first_failures"] = failures
    round_figures = {"inboxhub": figures}
    if sink is not None:
        baseline = rate_of(results["baseline"], pieces)
        baseline["segments_per_s"] = segment_rates["baseline"]
        baseline["segments_spread_pct"] = spread_pct(segment_rates["baseline"])
        baseline["peak_rss_mib"] = mib(sink_peak)
        round_figures["baseline"] = baseline
        pairs = [
            {
                "first": first,
                "inboxhub_per_s": ours_rate,
                "baseline_per_s": sink_rate,
                "pct": round(100 * ours_rate / sink_rate, 1) if sink_rate else None,
            }
            for first, ours_rate, sink_rate in zip(
                orders, segment_rates["inboxhub"], segment_rates["baseline"], strict=True
            )
        ]
        pcts = [pair["pct"] for pair in pairs if pair["pct"] is not None]
        round_figures["pairs"] = pairs
        if pcts:
            round_figures["accepted_pct_of_baseline"] = round(statistics.median(pcts), 1)
            round_figures["pair_pct_range"] = [min(pcts), max(pcts)]
    return round_figures


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark mail ingestion against an insert-only baseline.")
    parser.add_argument("--clients", type=int, default=8, help="concurrent SMTP client threads")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=None, help="pace sending at this many messages/s")
    parser.add_argument("--auth", choices=["on", "off"], default="off", help="sender authentication (G8)")
    parser.add_argument("--concurrency", type=int, default=2, help="processes per Celery worker")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker instances")
    parser.add_argument(
        "--pool", choices=["prefork", "threads"], default="prefork", help="Celery worker pool"
    )
    parser.add_argument("--database", default="inboxhub_bench")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    # 11–15 are the test suite's (DESIGN.md): a bench run beside `make test` must not flush them.
    parser.add_argument("--redis-db", type=int, default=9)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--workers-after-send",
        action="store_true",
        help="start the workers once every message is accepted: the ingress alone, without their CPU",
    )
    parser.add_argument(
        "--worker-cpu-priority",
        default=None,
        help="WORKER_CPU_PRIORITY for the workers (default: the setting's, idle; 0 shares the CPU evenly)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds, each on a fresh database with both servers started anew; the median round is reported",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=4,
        help="a round's messages in this many slices, each sent to both sides in turn (ABBA); "
        "a round's ratio is the median of the pairs'",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="before each segment, seconds in which the servers and workers use almost no CPU",
    )
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()

    dsn = database_url(args.postgres, args.database)
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    workdir = Path(tempfile.mkdtemp(prefix="inboxhub-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "inboxhub.settings",
        "DATABASE_URL": dsn,
        "LOCAL_RUN": "true",  # this checkout's key unless SECRET_KEY is set
        "REDIS_URL": redis_url,
        "MEDIA_ROOT": str(workdir / "media"),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    if args.worker_cpu_priority is not None:
        env["WORKER_CPU_PRIORITY"] = args.worker_cpu_priority
    demo = fresh_database(args, env, redis_url)
    addresses = [inbox["fallback_address"] for account in demo["accounts"] for inbox in account["inboxes"]]
    acme = next(account for account in demo["accounts"] if account["subdomain"] == "acme")
    # Forwards come from an agent of acme, to acme's default inbox (listed first).
    addresses.sort(key=lambda address: address != acme["inboxes"][0]["fallback_address"])
    member = ("Ada Lovelace", "ada@acme.example")

    keys = generate_dkim_key()
    messages = plan_messages(args.messages, seed=args.seed, addresses=addresses, member=member, keys=keys)
    # Two messages a client: every database thread of either server connects before the clock.
    warmup = plan_messages(
        2 * args.clients,
        seed=args.seed + 1,
        addresses=addresses,
        member=member,
        keys=keys,
        mix={"plain": 1},
        prefix=WARMUP_PREFIX,
    )
    dns_server = None
    if args.auth == "on":
        dns_server = start_dns(keys, member_domain="acme.example")
        env |= {"TRUSTED_NETWORKS": "", "DNS_NAMESERVERS": dns_server.address}
    else:
        # As `make run`: a client on this machine counts as authenticated, without any lookup.
        env |= {"TRUSTED_NETWORKS": "127.0.0.0/8"}
    load_before = os.getloadavg()[0]
    rounds = []
    try:
        for number in range(args.rounds):
            if number:
                fresh_database(args, env, redis_url)
            logs = workdir / f"round-{number + 1}"
            logs.mkdir()
            load = os.getloadavg()[0]
            figures = run_round(args, env, dsn, messages, warmup, logs)
            figures["loadavg_1m"] = [round(load, 2), round(os.getloadavg()[0], 2)]
            rounds.append(figures)
            print(round_summary(number + 1, figures), file=sys.stderr, flush=True)
    finally:
        if dns_server is not None:
            dns_server.stop()
        redis.Redis.from_url(redis_url).flushdb()
    # The round with the median ratio (or median rate) stands for the run; every round is listed.
    rounds_by = sorted(
        rounds, key=lambda r: r.get("accepted_pct_of_baseline", r["inboxhub"]["accepted_per_s"])
    )
    median = rounds_by[len(rounds_by) // 2]
    output = {
        "clients": args.clients,
        "messages": args.messages,
        "rate": args.rate,
        "auth": args.auth,
        "worker_concurrency": args.concurrency * args.workers,
        "worker_pool": args.pool,
        "workers_after_send": args.workers_after_send,
        "worker_cpu_priority": env.get("WORKER_CPU_PRIORITY", "default"),
        "mix": {kind: sum(1 for m in messages if m.kind == kind) for kind in MIX},
        "dns_queries": sum(dns_server.queries.values()) if dns_server else None,
        "rounds": len(rounds),
        "pairs_per_round": args.pairs,
        "warmup_messages": len(warmup),
        **median,
    }
    if len(rounds) > 1:
        output["per_round"] = [
            {
                "accepted_per_s": r["inboxhub"]["accepted_per_s"],
                "baseline_accepted_per_s": r.get("baseline", {}).get("accepted_per_s"),
                "accepted_pct_of_baseline": r.get("accepted_pct_of_baseline"),
                "pair_pcts": [pair["pct"] for pair in r.get("pairs", [])],
                "segments_per_s": r["inboxhub"]["segments_per_s"],
                "baseline_segments_per_s": r.get("baseline", {}).get("segments_per_s"),
                "loadavg_1m": r["loadavg_1m"],
                "e2e_p99_ms": r["inboxhub"].get("e2e_p99_ms"),
            }
            for r in rounds
        ]
    # Other work on the machine skews every figure: the 1-minute load average before and after.
    output["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    output["logs"] = str(workdir)
    print(json.dumps(output))


def round_summary(number: int, figures: dict) -> str:
    """A round in words on stderr, while the run goes on (stdout keeps its one JSON line)."""
    ours = figures["inboxhub"]
    load = figures["loadavg_1m"]
    lines = [
        f"round {number} (load {load[0]}–{load[1]}): inboxhub {ours['accepted_per_s']}/s, "
        f"segments {ours['segments_per_s']} (spread {ours['segments_spread_pct']} %)"
    ]
    if "baseline" in figures:
        sink = figures["baseline"]
        lines.append(
            f"  baseline {sink['accepted_per_s']}/s, segments {sink['segments_per_s']} "
            f"(spread {sink['segments_spread_pct']} %)"
        )
        lines += [
            f"  pair {n}, {pair['first']} first: "
            f"{pair['inboxhub_per_s']} vs {pair['baseline_per_s']}/s = {pair['pct']} %"
            for n, pair in enumerate(figures["pairs"], 1)
        ]
        lines.append(
            f"  median {figures.get('accepted_pct_of_baseline')} % (pairs {figures.get('pair_pct_range')})"
        )
    return "\n".join(lines)


def fresh_database(args, env: dict[str, str], redis_url: str) -> dict:
    """An empty broker and a new database with the demo accounts; the demo's JSON."""
    redis.Redis.from_url(redis_url).flushdb()
    recreate_database(args.postgres, args.database)
    manage(env, "migrate", "--verbosity", "0")
    # Without the demo's week of mail: the spool holds only the messages this run sends and counts.
    return json.loads(manage(env, "demo", "--json", "--without-mail"))


if __name__ == "__main__":
    main()
