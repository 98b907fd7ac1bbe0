"""What the HTTP benchmarks share (bench/inbox.py, bench/live.py): a throwaway database, a free port,
and gunicorn started on the real app and waited for until it listens."""

import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

BASE_DIR = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def database_url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


def recreate_database(postgres: str, name: str) -> None:
    if name == "inboxhub":
        sys.exit("refusing to drop the database inboxhub")
    with psycopg.connect(database_url(postgres, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(env: dict[str, str], port: int, log: Path, *options: str) -> subprocess.Popen:
    """`gunicorn inboxhub.wsgi` on 127.0.0.1:`port` with `options`, once it accepts connections."""
    command = [GUNICORN, "inboxhub.wsgi:application", "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    with log.open("w") as out:
        process = subprocess.Popen([*command, *options], cwd=BASE_DIR, env=env, stdout=out, stderr=out)  # noqa: S603
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            if process.poll() is not None:
                sys.exit(f"gunicorn exited; see {log}")
            time.sleep(0.2)
    process.terminate()
    sys.exit(f"gunicorn did not listen on {port}; see {log}")
