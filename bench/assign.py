"""Automatic assignment benchmark (issue 13): decisions per second and fairness under parallel processes.

    .venv/bin/python bench/assign.py [--new 2000] [--workers 1|4] [--conversations 100000]

Re-creates the database `inboxhub_bench_assign`, migrates it and seeds one
account with one inbox, 20 paid-seat agents (all available), an enabled rule
(assign_to specific) listing all of them, and 100,000 conversations in the
inbox (COPY): 90 % closed, the open ones assigned with a skew. Then, for 1 and
for 4 worker processes, it restores that world, adds N new unassigned open
conversations and routes them, every process taking a disjoint share in
shuffled order. `--path pipeline` (default) does what the ingest pipeline
does: each conversation arrives in a transaction of its own (it is opened),
then `routing.services.route_waiting` decides whatever waits in the inbox
under one lock, as `ingest.pipeline.assign_started` does after a commit;
`--path single` routes each with `route_new_conversation` in its own
transaction (one decision per lock). Prints one JSON line; bench/README.md
explains it. Talks only to PostgreSQL on 127.0.0.1 (no Redis: REDIS_URL unset).
"""

import argparse
import heapq
import json
import math
import multiprocessing
import os
import queue
import random
import re
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

PYTHON = sys.executable
CLOSED_SHARE = 0.9
CONTACTS = 300
# The existing open conversations of agent k (in a shuffled order of agents): BASE + STEP × k.
OPEN_STEP = 10


# --- the database --------------------------------------------------------------------


def database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(base: str, name: str) -> None:
    if name == "inboxhub":
        sys.exit("refusing to drop the database inboxhub")
    with psycopg.connect(database_url(base, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def django_env(dsn: str) -> dict[str, str]:
    """The environment of this process and its workers: the bench database, no Redis, quiet logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "inboxhub.settings",
        "DATABASE_URL": dsn,
        "LOCAL_RUN": "true",  # this checkout's key unless SECRET_KEY is set
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def migrate(env: dict[str, str]) -> None:
    result = subprocess.run(
        [PYTHON, "manage.py", "migrate", "--verbosity", "0"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        sys.exit(f"manage.py migrate failed:\n{result.stdout}\n{result.stderr}")


def vacuum_analyze(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# --- seeding -------------------------------------------------------------------------


def existing_open_counts(agents: int, existing: int, rng: random.Random) -> list[int]:
    """Open conversations per agent (by agent index): ~10 % of `existing`, skewed by OPEN_STEP."""
    total_open = round(existing * (1 - CLOSED_SHARE))
    skew = OPEN_STEP * agents * (agents - 1) // 2
    base = max(0, (total_open - skew) // agents)
    ranks = list(range(agents))
    rng.shuffle(ranks)
    return [base + OPEN_STEP * rank for rank in ranks]


def seed(dsn: str, *, agents: int, existing: int, rng: random.Random) -> dict:
    """One account, inbox, rule and `agents` agents with ORM calls; the conversations with COPY."""
    from django_scopes import scopes_disabled

    from inboxes.models import Contact, Conversation, Inbox
    from inboxhub.models import Account, Membership, User
    from routing.models import AssignmentRule

    with scopes_disabled():
        account = Account.objects.create(
            subdomain="bench", company_name="Bench Ltd", tier=Account.Tier.PROFESSIONAL
        )
        inbox = Inbox.objects.create(account=account, name="Support", is_default=True)
        users = User.objects.bulk_create(
            User(email=f"agent{n}@bench.example", full_name=f"Agent {n:02d}", password="!")  # noqa: S106
            for n in range(agents)
        )
        members = Membership.objects.bulk_create(
            Membership(
                account=account,
                user=user,
                username=f"agent{n}",
                seat=Membership.Seat.SERVICE_HUB,
                availability=Membership.Availability.AVAILABLE,
            )
            for n, user in enumerate(users)
        )
        rule = AssignmentRule.objects.create(
            account=account,
            inbox=inbox,
            enabled=True,
            assign_to=AssignmentRule.AssignTo.SPECIFIC,
            only_available=True,
        )
        rule.members.set(members)
        contacts = Contact.objects.bulk_create(
            Contact(account=account, email=f"customer{n}@example.net", name=f"Customer {n}")
            for n in range(CONTACTS)
        )

    open_counts = existing_open_counts(agents, existing, rng)
    rows = []
    now = datetime.now(UTC)
    for member, count in zip(members, open_counts, strict=True):
        rows += [("open", member.pk)] * count
    closed = existing - len(rows)
    rows += [("closed", rng.choice(members).pk) for _ in range(closed)]
    rng.shuffle(rows)
    table = Conversation._meta.db_table
    started = time.monotonic()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        columns = (
            "account_id, inbox_id, contact_id, subject, status, assignee_id, created_at, last_message_at"
        )
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for n, (status, assignee) in enumerate(rows):
                at = now - timedelta(minutes=existing - n)
                copy.write_row(
                    (account.pk, inbox.pk, rng.choice(contacts).pk, f"Earlier {n}", status, assignee, at, at)
                )
        last_seeded = cur.execute(f"SELECT max(id) FROM {table}").fetchone()[0]  # noqa: S608
    copied_s = time.monotonic() - started
    vacuum_analyze(dsn)
    return {
        "account": account.pk,
        "inbox": inbox.pk,
        "members": [m.pk for m in members],
        "contacts": [c.pk for c in contacts],
        "last_seeded": last_seeded,
        "existing_open": dict(zip([m.pk for m in members], open_counts, strict=True)),
        "existing_closed": closed,
        "copy_s": round(copied_s, 2),
    }


def reset_and_add_new(
    dsn: str, world: dict, count: int, rng: random.Random, *, status: str = "open"
) -> list[int]:
    """Back to the seeded world (no decisions, no new conversations), then `count` new unassigned ones.

    `status` "closed": they have not arrived yet; the pipeline path opens each as its message would.
    """
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM routing_assignmentdecision")
        cur.execute("DELETE FROM routing_assigneestate")
        cur.execute("DELETE FROM inboxes_conversation WHERE id > %s", (world["last_seeded"],))
        now = datetime.now(UTC)
        rows = [
            (world["account"], world["inbox"], rng.choice(world["contacts"]), f"New {n}", status, now, now)
            for n in range(count)
        ]
        with cur.copy(
            "COPY inboxes_conversation (account_id, inbox_id, contact_id, subject, status, "
            "created_at, last_message_at) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        ids = [
            pk
            for (pk,) in cur.execute(
                "SELECT id FROM inboxes_conversation WHERE id > %s ORDER BY id", (world["last_seeded"],)
            )
        ]
    vacuum_analyze(dsn)
    return ids


# --- the workers ---------------------------------------------------------------------

TABLE_RE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)


def label_of(sql: str) -> str:
    """A short name for a statement: its verb, its first table, FOR UPDATE."""
    verb = sql.lstrip().split(None, 1)[0].upper()
    if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
        return verb
    table = TABLE_RE.search(sql)
    locked = " FOR UPDATE" if "FOR UPDATE" in sql else ""
    return f"{verb} {table.group(1) if table else '?'}{locked}"


def worker(
    number: int, ids: list[int], account_id: int, path: str, batch: int, ready, start, results
) -> None:
    """One OS process: route its share of the new conversations, one transaction each, and report."""
    try:
        results.put(route_share(number, ids, account_id, path, batch, ready, start))
    except BaseException as error:  # the parent must hear of it instead of waiting
        results.put({"worker": number, "error": f"{type(error).__name__}: {error}"})
        raise


def route_share(number: int, ids: list[int], account_id: int, path: str, batch: int, ready, start) -> dict:
    import django

    django.setup()
    from django.db import connections, transaction
    from django_scopes import scope, scopes_disabled

    from inboxes.models import Conversation
    from inboxhub.models import Account
    from routing.services import route_new_conversation, route_waiting

    # Under fork nothing is inherited open (the parent closed its connections before starting us);
    # under spawn this is a new interpreter. Either way: connections of this process only.
    connections.close_all()
    connection = connections["default"]
    with scopes_disabled():
        account = Account.objects.get(pk=account_id)
        found = {c.pk: c for c in Conversation.objects.filter(pk__in=ids)}
    # As in the pipeline, the conversation is in hand when it is routed; loading it is not timed.
    conversations = [found[pk] for pk in ids]

    per_label: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    current = {"queries": 0, "db": 0.0, "lock": 0.0}

    def probe(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent = time.perf_counter() - began
            current["queries"] += 1
            current["db"] += spent
            label = label_of(sql)
            if label == "SELECT routing_assignmentrule FOR UPDATE":
                current["lock"] += spent
            totals = per_label[label]
            totals[0] += 1
            totals[1] += spent

    latencies, in_call, db, lock, queries, commits, cpu = [], [], [], [], [], [], []
    ready.put(number)
    start.wait()
    began = time.time()
    with connection.execute_wrapper(probe):
        for position, conversation in enumerate(conversations, start=1):
            current.update(queries=0, db=0.0, lock=0.0)
            c0 = time.process_time()
            t0 = time.perf_counter()
            if path == "pipeline":
                with scope(account=account):
                    # The message's commit: its conversation arrives. Then the step after it.
                    Conversation.objects.filter(pk=conversation.pk).update(status="open")
                    # A task's rows commit one by one; the assignment step follows the task's last row.
                    if position % batch == 0 or position == len(conversations):
                        route_waiting(account.pk, conversation.inbox_id)
                    t1 = time.perf_counter()
            else:
                with scope(account=account), transaction.atomic():
                    route_new_conversation(conversation)
                    t1 = time.perf_counter()
            t2 = time.perf_counter()
            cpu.append(time.process_time() - c0)
            latencies.append(t2 - t0)
            in_call.append(t1 - t0)
            commits.append(t2 - t1)
            db.append(current["db"])
            lock.append(current["lock"])
            queries.append(current["queries"])
    ended = time.time()
    connections.close_all()
    return {
        "worker": number,
        "pid": os.getpid(),
        "started": began,
        "ended": ended,
        "latencies": latencies,
        "in_call": in_call,
        "commits": commits,
        "cpu": cpu,
        "db": db,
        "lock": lock,
        "queries": queries,
        "per_label": dict(per_label),
    }


# --- figures -------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def best_spread(existing: dict[int, int], new: int) -> int:
    """The smallest max−min of open counts N new conversations can reach: always to the least loaded."""
    heap = list(existing.values())
    heapq.heapify(heap)
    for _ in range(new):
        heapq.heapreplace(heap, heap[0] + 1)
    return max(heap) - min(heap)


def outcome(dsn: str, world: dict, new_ids: list[int]) -> dict:
    """What the database says after a run: spreads, double decisions, unassigned."""
    first = new_ids[0]
    with psycopg.connect(dsn, autocommit=True) as conn:
        new_counts = dict(
            conn.execute(
                "SELECT assignee_id, count(*) FROM inboxes_conversation "
                "WHERE id >= %s AND status = 'open' AND assignee_id IS NOT NULL GROUP BY 1",
                (first,),
            ).fetchall()
        )
        open_counts = dict(
            conn.execute(
                "SELECT assignee_id, count(*) FROM inboxes_conversation "
                "WHERE inbox_id = %s AND status = 'open' AND assignee_id IS NOT NULL GROUP BY 1",
                (world["inbox"],),
            ).fetchall()
        )
        unassigned = conn.execute(
            "SELECT count(*) FROM inboxes_conversation WHERE id >= %s AND assignee_id IS NULL", (first,)
        ).fetchone()[0]
        decisions = conn.execute(
            "SELECT count(*), count(DISTINCT conversation_id), count(*) FILTER (WHERE chosen_id IS NULL) "
            "FROM routing_assignmentdecision WHERE conversation_id >= %s",
            (first,),
        ).fetchone()
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT conversation_id FROM routing_assignmentdecision "
            "WHERE conversation_id >= %s GROUP BY 1 HAVING count(*) > 1) AS t",
            (first,),
        ).fetchone()[0]
        mismatched = conn.execute(
            "SELECT count(*) FROM routing_assignmentdecision d JOIN inboxes_conversation c "
            "ON c.id = d.conversation_id WHERE d.conversation_id >= %s "
            "AND c.assignee_id IS DISTINCT FROM d.chosen_id",
            (first,),
        ).fetchone()[0]
    members = world["members"]
    new_per_agent = [new_counts.get(pk, 0) for pk in members]
    open_per_agent = [open_counts.get(pk, 0) for pk in members]
    return {
        "spread_new": max(new_per_agent) - min(new_per_agent),
        "spread_open": max(open_per_agent) - min(open_per_agent),
        "spread_open_best_possible": best_spread(world["existing_open"], len(new_ids)),
        "new_per_agent": new_per_agent,
        "open_per_agent": open_per_agent,
        "decisions": decisions[0],
        "conversations_decided": decisions[1],
        "decisions_without_choice": decisions[2],
        "assigned_twice": twice,
        "unassigned": unassigned,
        "decision_assignee_mismatch": mismatched,
    }


def round_trips(dsn: str, count: int = 500) -> dict:
    """`SELECT 1` from a fresh connection: how busy the machine is, apart from the product."""
    times = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(count):
            began = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            times.append(time.perf_counter() - began)
    return {"p50_ms": ms(percentile(times, 50)), "p99_ms": ms(percentile(times, 99))}


def run(args, dsn: str, world: dict, workers: int, rng: random.Random) -> dict:
    new_ids = reset_and_add_new(
        dsn, world, args.new, rng, status="closed" if args.path == "pipeline" else "open"
    )
    select1 = round_trips(dsn)
    order = new_ids[:]
    rng.shuffle(order)
    shares = [order[n::workers] for n in range(workers)]
    context = multiprocessing.get_context(args.start_method)
    ready, results, start = context.Queue(), context.Queue(), context.Event()
    from django.db import connections

    connections.close_all()  # nothing open to inherit under fork
    processes = [
        context.Process(
            target=worker,
            args=(n, shares[n], world["account"], args.path, args.batch, ready, start, results),
            name=f"router-{n}",
        )
        for n in range(workers)
    ]
    load_before = os.getloadavg()[0]
    for process in processes:
        process.start()
    deadline = time.monotonic() + args.timeout
    reports: list[dict] = []
    try:
        for _ in processes:
            ready.get(timeout=max(1, deadline - time.monotonic()))
        start.set()
        while len(reports) < workers:
            report = results.get(timeout=max(1, deadline - time.monotonic()))
            if "error" in report:
                sys.exit(f"worker {report['worker']} failed: {report['error']}")
            reports.append(report)
    except queue.Empty:
        sys.exit(f"{workers} worker(s) did not finish within {args.timeout} s")
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
    wall = max(r["ended"] for r in reports) - min(r["started"] for r in reports)

    def joined(key: str) -> list[float]:
        return [value for r in reports for value in r[key]]

    latencies = joined("latencies")
    per_label: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for report in reports:
        for label, (count, spent) in report["per_label"].items():
            per_label[label][0] += count
            per_label[label][1] += spent
    decided = len(latencies)
    figures = {
        "workers": workers,
        "path": args.path,
        "batch": args.batch if args.path == "pipeline" else 1,
        "decisions_per_s": round(decided / wall, 1),
        "wall_s": round(wall, 2),
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(max(latencies)),
        # Where one decision's time goes, as means over all decisions.
        "mean_ms": ms(sum(latencies) / decided),
        # The worker's own CPU time (Python, ORM, driver), and the time inside cursor.execute.
        "mean_cpu_ms": ms(sum(joined("cpu")) / decided),
        "mean_db_ms": ms(sum(joined("db")) / decided),
        "mean_rule_lock_query_ms": ms(sum(joined("lock")) / decided),
        "mean_commit_ms": ms(sum(joined("commits")) / decided),
        "queries_per_decision": round(sum(joined("queries")) / decided, 2),
        "queries": {
            label: {"n_per_decision": round(count / decided, 2), "mean_ms": ms(spent / count)}
            for label, (count, spent) in sorted(per_label.items(), key=lambda item: -item[1][1])
        },
    }
    figures |= outcome(dsn, world, new_ids)
    figures["select1_before"] = select1
    figures["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark automatic assignment: speed and fairness.")
    parser.add_argument("--new", type=int, default=2000, help="new conversations routed per run")
    parser.add_argument(
        "--path",
        choices=["pipeline", "single"],
        default="pipeline",
        help="pipeline: each arrives, then route_waiting (as after an ingest commit); single: one per lock",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=25,
        help="pipeline path: arrivals per assignment step (INGEST_BATCH_SIZE); 1: a quiet inbox",
    )
    parser.add_argument(
        "--workers", type=int, action="append", help="worker processes (repeatable; default: 1 then 4)"
    )
    parser.add_argument("--conversations", type=int, default=100_000, help="existing conversations")
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--start-method", choices=["spawn", "fork", "forkserver"], default="spawn")
    parser.add_argument("--timeout", type=float, default=240, help="seconds a run may take")
    parser.add_argument("--database", default="inboxhub_bench_assign")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    worker_counts = args.workers or [1, 4]
    if urlsplit(args.postgres).hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("--postgres must be a server on this machine (127.0.0.1)")

    rng = random.Random(args.seed)
    dsn = database_url(args.postgres, args.database)
    env = django_env(dsn)
    started = time.monotonic()
    recreate_database(args.postgres, args.database)
    migrate(env)
    migrated_s = time.monotonic() - started
    os.environ.clear()
    os.environ.update(env)  # this process and the workers it starts see the bench database only
    import django

    django.setup()
    started = time.monotonic()
    world = seed(dsn, agents=args.agents, existing=args.conversations, rng=rng)
    seeded_s = time.monotonic() - started

    runs = [run(args, dsn, world, workers, rng) for workers in worker_counts]
    output = {
        "new": args.new,
        "existing": args.conversations,
        "existing_open": sum(world["existing_open"].values()),
        "agents": args.agents,
        "start_method": args.start_method,
        "cpus": os.cpu_count(),
        "migrate_s": round(migrated_s, 1),
        "seed_s": round(seeded_s, 1),
        "runs": {str(r["workers"]): r for r in runs},
        "database": args.database,
    }
    print(json.dumps(output))


if __name__ == "__main__":
    main()
