"""Where a worker's milliseconds go (issue 18 point 1): the ingest pipeline in one process, profiled.

    .venv/bin/python bench/worker_profile.py [--messages 600] [--batch 25] [--top 30] [--no-profile]

Re-creates the database `inboxhub_bench_profile` (`--database`) with the demo accounts, writes
`--messages` of bench/ingest.py's mix (plain, HTML, replies, members' forwards, 50 KB attachments;
DKIM-signed) into the spool as the ingress does (peer 127.0.0.1, trusted as under `make run`: no
DNS), then works them off in this process through `pipeline.process_inbound_batch`, `--batch` ids at
a time, as a worker's task does (without REDIS_URL: what it hands on runs in place, as in `make run`).
Prints one JSON line, then the profile's top functions by own time and the product's own functions
by cumulative time. CPU per message: the mean (everything a batch does, its assignment included, over
its messages); the median and p95 of each message's own work (`thread_time` around the pipeline's
per-row step: claim, parse, authenticate, receive, ticket, mark), over all messages and per kind;
and the assignment after each batch's commit, per new conversation. Queries per message likewise.
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


def backend_cpu_ms(pid: int) -> float | None:
    """User and system CPU of a PostgreSQL backend on this machine, from /proc (None when not local)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--batch", type=int, default=25, help="ids per task, as INGEST_BATCH_SIZE")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--no-profile", action="store_true", help="CPU figures only, without cProfile's overhead"
    )
    parser.add_argument(
        "--cpu-clock",
        action="store_true",
        help="profile by this thread's CPU time (waits on PostgreSQL left out; slower) instead of wall time",
    )
    parser.add_argument(
        "--show-queries",
        action="store_true",
        help="print the statements of the last message of each kind (to stderr)",
    )
    parser.add_argument("--save-profile", metavar="PATH", help="also write the profile there (pstats)")
    parser.add_argument(
        "--server-side-binding",
        action="store_true",
        help="psycopg binds parameters on the server and prepares repeated statements",
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

    if args.server_side_binding:
        connection.settings_dict["OPTIONS"]["server_side_binding"] = True
    # Assignment mail goes out as usual, into memory instead of onto this console.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    from django_scopes import scopes_disabled

    from channels_conn.models import InboundMessage
    from channels_conn.recipients import accounts_of
    from inboxes.models import Conversation
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

    kind_of = dict(zip(ids, (planned.kind for planned in messages), strict=True))
    queries = 0
    shown = {max(pk for pk in ids if kind_of[pk] == kind) for kind in set(kind_of.values())}
    current: list[int] = []

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        if args.show_queries and current and current[0] in shown:
            print(f"[{kind_of[current[0]]} #{current[0]}] {sql[:300]}", file=sys.stderr)
        return execute(sql, params, many, context)

    # Each row's own step, timed where the batch calls it; what is left of a batch is its assignment.
    per_message: dict[int, tuple[float, int]] = {}
    process = pipeline._process

    def timed_process(inbound_id, *rest):
        before, queries_before = time.thread_time(), queries
        current[:] = [inbound_id]
        try:
            return process(inbound_id, *rest)
        finally:
            current.clear()
            per_message[inbound_id] = ((time.thread_time() - before) * 1000, queries - queries_before)

    pipeline._process = timed_process
    with scopes_disabled():
        conversations_before = Conversation.objects.count()
    per_batch = []
    assigning, assigning_queries = 0.0, 0
    profile = cProfile.Profile(time.thread_time) if args.cpu_clock else cProfile.Profile()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    backend_cpu_before = backend_cpu_ms(backend)
    with connection.execute_wrapper(count):
        for start in range(0, len(ids), args.batch):
            chunk = ids[start : start + args.batch]
            cpu, queries_before = time.thread_time(), queries
            if not args.no_profile:
                profile.enable()
            outcomes = pipeline.process_inbound_batch(chunk)
            if not args.no_profile:
                profile.disable()
            spent = (time.thread_time() - cpu) * 1000
            per_batch.append(spent / len(chunk))
            assigning += spent - sum(per_message[pk][0] for pk in chunk)
            assigning_queries += queries - queries_before - sum(per_message[pk][1] for pk in chunk)
            assert all(state == "processed" for state in outcomes.values()), outcomes
    backend_cpu = backend_cpu_ms(backend)
    pipeline._process = process
    with scopes_disabled():
        started = Conversation.objects.count() - conversations_before
    total_cpu = sum(per_batch) / len(per_batch)
    per_batch.sort()

    def median_ms(pks) -> float:
        return round(statistics.median(per_message[pk][0] for pk in pks), 2)

    def p95_ms(pks) -> float:
        values = sorted(per_message[pk][0] for pk in pks)
        return round(values[int(0.95 * (len(values) - 1))], 2)

    by_kind = {kind: [pk for pk in ids if kind_of[pk] == kind] for kind in mix.MIX}
    print(
        json.dumps(
            {
                "messages": len(ids),
                "batch": args.batch,
                "kinds": {kind: sum(1 for m in messages if m.kind == kind) for kind in mix.MIX},
                "cpu_ms_per_message_mean": round(total_cpu, 2),
                "cpu_ms_per_message_median_of_batches": round(statistics.median(per_batch), 2),
                "cpu_ms_per_message_p95_of_batches": round(per_batch[int(0.95 * (len(per_batch) - 1))], 2),
                "cpu_ms_per_message_median": median_ms(ids),
                "cpu_ms_per_message_p95": p95_ms(ids),
                "cpu_ms_median_by_kind": {kind: median_ms(pks) for kind, pks in by_kind.items() if pks},
                "cpu_ms_assigning_per_new_conversation": round(assigning / max(started, 1), 2),
                "new_conversations": started,
                "queries_per_message": round(queries / len(ids), 1),
                "queries_per_message_median": statistics.median(per_message[pk][1] for pk in ids),
                "queries_median_by_kind": {
                    kind: statistics.median(per_message[pk][1] for pk in pks)
                    for kind, pks in by_kind.items()
                    if pks
                },
                "queries_assigning_per_new_conversation": round(assigning_queries / max(started, 1), 1),
                "postgres_cpu_ms_per_message_mean": backend_cpu is not None
                and round((backend_cpu - backend_cpu_before) / len(ids), 2),
                "server_side_binding": args.server_side_binding,
                "profiled": not args.no_profile,
                "note": "CPU of this thread (cProfile, when on, adds to it); postgres_cpu: its backend's",
            }
        )
    )
    if args.no_profile:
        return
    if args.save_profile:
        profile.dump_stats(args.save_profile)
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(
        r"/(ingest|inboxes|inboxhub|channels_conn|routing|tickets)/", args.top
    )
    print(out.getvalue())


if __name__ == "__main__":
    main()
