"""Threading benchmark (issue 15): what serializing the thread lookup costs per message.

    .venv/bin/python bench/threads.py [--threads 900] [--messages 2000]

Re-creates the database `inboxhub_bench_threads`, migrates it, provisions one
account, and receives the messages of N threads (a root and replies naming
their parent by In-Reply-To and References, a third of them by In-Reply-To
only) in shuffled order through `inboxes.receiving.receive_message`, one
transaction each, in one process on PostgreSQL. Prints one JSON line: the
messages and conversations (one per thread when nothing split), the median
and p95 milliseconds of a whole receive, and of the threading step inside it
(`lock_thread`, `thread_message`, `record_thread_keys`), timed by wrapping
those functions; run on a checkout from before the keys, it times the lookup
alone. Talks only to PostgreSQL on 127.0.0.1.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
DATABASE = "inboxhub_bench_threads"


def database_url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


def recreate(base: str) -> str:
    with psycopg.connect(database_url(base, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    dsn = database_url(base, DATABASE)
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "DJANGO_SETTINGS_MODULE": "inboxhub.settings",
        "LOCAL_RUN": "true",
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=BASE_DIR, env=env, check=True
    )
    return dsn


def mails(address: str, threads: int, messages: int, rng: random.Random) -> list[bytes]:
    sizes = [1] * threads
    for _ in range(messages - threads):
        sizes[rng.randrange(threads)] += 1
    out = []
    for thread, size in enumerate(sizes):
        ids = []
        for n in range(size):
            headers = [f"Message-ID: <t{thread}-m{n}@customer.example>"]
            if ids:
                headers.append(f"In-Reply-To: <{ids[-1]}>")
                if thread % 3:
                    headers.append("References: " + " ".join(f"<{i}>" for i in ids))
            body = f"Message {n} of thread {thread}.\r\n"
            out.append(
                (
                    f"From: Customer {thread} <c{thread}@customer.example>\r\nTo: {address}\r\n"
                    f"Subject: Order {thread}\r\n" + "\r\n".join(headers) + "\r\n\r\n" + body
                ).encode()
            )
            ids.append(f"t{thread}-m{n}@customer.example")
    rng.shuffle(out)
    return out


def timed(module, name: str, spent: list[float]) -> None:
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[-1] += time.perf_counter() - start

    setattr(module, name, wrapper)


def run(threads: int, messages: int) -> dict:
    import django

    django.setup()
    from django_scopes import scope

    from inboxes import receiving
    from inboxes.models import Conversation
    from inboxhub.lib.mail.parsing import parse_message
    from inboxhub.provisioning import provision_account

    account = provision_account(subdomain="bench", company_name="Bench", email="admin@bench.example").account
    with scope(account=account):
        inbox = account.inboxes.select_related("account").get(is_default=True)
        address = inbox.channels.get().fallback_address.address
    step: list[float] = []
    # The threading step: the lookup, and the lock and the keys where this version has them,
    # so that the same script measures a checkout from before the keys (no lock, no keys).
    for name in ("lock_thread", "thread_message", "record_thread_keys"):
        if hasattr(receiving, name):
            timed(receiving, name, step)
    whole = []
    parsed = [parse_message(raw) for raw in mails(address, threads, messages, random.Random(15))]
    with scope(account=account):
        for message in parsed:
            step.append(0.0)
            start = time.perf_counter()
            receiving.receive_message(inbox, message, recipient=address)
            whole.append(time.perf_counter() - start)
        conversations = Conversation.objects.filter(inbox=inbox).count()

    def ms(values: list[float], q: int) -> float:
        return round(statistics.quantiles(values, n=100)[q - 1] * 1000, 2)

    return {
        "bench": "threading",
        "messages": messages,
        "threads": threads,
        "conversations": conversations,
        "receive_ms_p50": ms(whole, 50),
        "receive_ms_p95": ms(whole, 95),
        "threading_step_ms_p50": ms(step, 50),
        "threading_step_ms_p95": ms(step, 95),
        "threading_share_of_receive": round(sum(step) / sum(whole), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=900)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/inboxhub"),
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = recreate(args.database_url)
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "inboxhub.settings"
    print(json.dumps(run(args.threads, args.messages)))


if __name__ == "__main__":
    main()
