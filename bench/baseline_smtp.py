"""The ingestion benchmark's baseline: an aiosmtpd server that only inserts each message into one table.

No recipient check, no Django, no broker: the floor of what any SMTP-to-PostgreSQL
ingress costs on this machine. Database work runs on a pool of threads, each with
its own autocommit connection, the same shape as runsmtp's SMTP_DB_THREADS.

    python bench/baseline_smtp.py --port 2526 --dsn postgres://postgres@127.0.0.1/inboxhub_bench
"""

import argparse
import asyncio
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
from aiosmtpd.controller import Controller

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS bench_baseline (
    id bigserial PRIMARY KEY,
    raw bytea NOT NULL,
    mail_from text NOT NULL,
    rcpt_tos text[] NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
)
"""


class InsertOnly:
    """aiosmtpd handler: DATA inserts the raw bytes and envelope, then answers 250."""

    def __init__(self, dsn: str, threads: int) -> None:
        self.dsn = dsn
        self.local = threading.local()
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="baseline-db")

    def insert(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> int:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = psycopg.connect(self.dsn, autocommit=True)
        row = conn.execute(
            "INSERT INTO bench_baseline (raw, mail_from, rcpt_tos) VALUES (%s, %s, %s) RETURNING id",
            (raw, mail_from, rcpt_tos),
        ).fetchone()
        return row[0]

    async def handle_DATA(self, server, session, envelope) -> str:
        loop = asyncio.get_running_loop()
        row_id = await loop.run_in_executor(
            self.executor, self.insert, envelope.original_content, envelope.mail_from, envelope.rcpt_tos
        )
        return f"250 2.0.0 Ok: queued as {row_id}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute(TABLE_SQL)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    controller = Controller(
        InsertOnly(args.dsn, args.threads), hostname=args.host, port=args.port, decode_data=False
    )
    controller.start()
    print(f"baseline SMTP on {args.host}:{args.port}", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
