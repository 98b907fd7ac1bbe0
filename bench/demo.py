"""How long `manage.py demo` takes to seed Acme's week of mail (issue 14: under 3 s on the 2-core machine).

Each round drops and re-creates the database (`--database`, default `inboxhub_bench_demo`), migrates
it, seeds the accounts without mail, then times `seed_week` alone in a fresh process: every mail
through the spool and the ingest pipeline, every agent's answer through `send_reply`, the re-timing.
Prints one JSON line: seconds per round, the median, the process's CPU seconds, the steps and
queries of a round, and the 1-minute load average before and after (other work on the machine
skews every figure).

    .venv/bin/python bench/demo.py --rounds 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import psycopg

BASE_DIR = Path(__file__).resolve().parent.parent

MEASURE = """
import json, time
from django.db import connection
from django.test.utils import CaptureQueriesContext
from inboxhub.demo_mail import seed_week
from inboxhub.models import Account
account = Account.objects.get(subdomain="acme")
wall, cpu = time.perf_counter(), time.process_time()
with CaptureQueriesContext(connection) as queries:
    steps = seed_week(account)
print(json.dumps({"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu,
                  "steps": steps, "queries": len(queries.captured_queries)}))
"""


def manage(env: dict[str, str], *args: str) -> str:
    command = [sys.executable, "manage.py", *args]
    result = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True, check=False)
    if result.returncode:
        sys.exit(f"manage.py {' '.join(args[:1])} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def one_round(base: str, name: str) -> dict:
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": f"{base}/{name}", "REDIS_URL": "", "LOCAL_RUN": "true"}
    manage(env, "migrate", "--verbosity", "0")
    manage(env, "demo", "--without-mail")
    return json.loads(manage(env, "shell", "--no-imports", "-c", MEASURE).strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="inboxhub_bench_demo")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rounds = [one_round(args.postgres.rstrip("/"), args.database) for _ in range(args.rounds)]
    print(
        json.dumps(
            {
                "seconds": [round(r["seconds"], 2) for r in rounds],
                "median_seconds": round(statistics.median(r["seconds"] for r in rounds), 2),
                "cpu_seconds": [round(r["cpu_seconds"], 2) for r in rounds],
                "steps": rounds[0]["steps"],
                "queries": rounds[0]["queries"],
                "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            }
        )
    )


if __name__ == "__main__":
    main()
