"""Where a worker's milliseconds go (issue 18 point 1): the ingest pipeline in one process, profiled.

    .venv/bin/python bench/worker_profile.py [--messages 600] [--batch 25] [--top 30] [--no-profile]

Re-creates the database `inboxhub_bench_profile` (`--database`) with the demo accounts, writes
`--messages` of bench/ingest.py's mix (plain, HTML, replies, members' forwards, 50 KB attachments;
DKIM-signed) into the spool as the ingress does (peer 127.0.0.1, trusted as under `make run`: no
DNS), then works them off in this process through `pipeline.process_inbound_batch`, `--batch` ids at
a time, as a worker's task does (without REDIS_URL: what it hands on runs in place, as in `make run`).
Prints one JSON line (CPU ms per message: mean, and median / p95 over batches; queries per message),
then the profile's top functions by own time and the product's own functions by cumulative time.
"""

import argparse
import cProfile
import importlib.util
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))


def bench_ingest():
    """bench/ingest.py, whose mix this profiles (loaded by path: `ingest` is also the product's app)."""
    spec = importlib.util.spec_from_file_location("bench_ingest", BASE_DIR / "bench" / "ingest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--batch", type=int, default=25, help="ids per task, as INGEST_BATCH_SIZE")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--no-profile", action="store_true", help="CPU figures only, without cProfile's overhead"
    )
    parser.add_argument("--database", default="inboxhub_bench_profile")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()

    mix = bench_ingest()
    dsn = mix.database_url(args.postgres, args.database)
    media = tempfile.mkdtemp(prefix="inboxhub-profile-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "inboxhub.settings",
        "DATABASE_URL": dsn,
        "LOCAL_RUN": "true",
        "MEDIA_ROOT": media,
        "LOG_LEVEL": "WARNING",
        "TRUSTED_NETWORKS": "127.0.0.0/8",
    }
    mix.recreate_database(args.postgres, args.database)
    mix.manage(env, "migrate", "--verbosity", "0")
    demo = json.loads(mix.manage(env, "demo", "--json", "--without-mail"))
    addresses = [inbox["fallback_address"] for account in demo["accounts"] for inbox in account["inboxes"]]
    acme = next(account for account in demo["accounts"] if account["subdomain"] == "acme")
    addresses.sort(key=lambda address: address != acme["inboxes"][0]["fallback_address"])
    messages = mix.plan_messages(
        args.messages,
        seed=args.seed,
        addresses=addresses,
        member=("Ada Lovelace", "ada@acme.example"),
        keys=mix.generate_dkim_key(),
    )

    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    # Assignment mail goes out as usual, into memory instead of onto this console.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    from channels_conn.models import InboundMessage
    from channels_conn.recipients import accounts_of
    from ingest import pipeline

    ids = []
    for planned in messages:
        [account_id] = set(accounts_of([planned.rcpt]).values())
        row = InboundMessage.objects.create(
            account_id=account_id,
            raw=planned.raw,
            size=len(planned.raw),
            mail_from=planned.mail_from,
            rcpt_tos=[planned.rcpt],
            peer_ip="127.0.0.1",
            helo=mix.HELO,
        )
        ids.append(row.pk)

    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    per_batch = []
    profile = cProfile.Profile()
    with connection.execute_wrapper(count):
        for start in range(0, len(ids), args.batch):
            chunk = ids[start : start + args.batch]
            cpu = time.process_time()
            if not args.no_profile:
                profile.enable()
            outcomes = pipeline.process_inbound_batch(chunk)
            if not args.no_profile:
                profile.disable()
            per_batch.append((time.process_time() - cpu) * 1000 / len(chunk))
            assert all(state == "processed" for state in outcomes.values()), outcomes
    total_cpu = sum(per_batch) / len(per_batch)
    per_batch.sort()
    print(
        json.dumps(
            {
                "messages": len(ids),
                "batch": args.batch,
                "kinds": {kind: sum(1 for m in messages if m.kind == kind) for kind in mix.MIX},
                "cpu_ms_per_message_mean": round(total_cpu, 2),
                "cpu_ms_per_message_median_of_batches": round(statistics.median(per_batch), 2),
                "cpu_ms_per_message_p95_of_batches": round(per_batch[int(0.95 * (len(per_batch) - 1))], 2),
                "queries_per_message": round(queries / len(ids), 1),
                "profiled": not args.no_profile,
                "note": "CPU of this process only (cProfile, when on, adds to it); PostgreSQL's apart",
            }
        )
    )
    if args.no_profile:
        return
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(
        r"/(ingest|inboxes|inboxhub|channels_conn|routing|tickets)/", args.top
    )
    print(out.getvalue())


if __name__ == "__main__":
    main()
