"""What compacting the retained raw mail saves on bench/ingest.py's mix, and its CPU (issue 18 point 4).

    .venv/bin/python bench/compact_raw.py [--messages 2000] [--mix issue|ingest] [--seed 4] [--postgres DSN]

Generates bench/ingest.py's messages (plain, HTML, replies, members' forwards, 50 KB
attachments; DKIM-signed) in the issue's mix, as bench/side_by_side.py's `--mix issue`
(a third with an attachment: the corpus whose spool is 55 MB of a 76 MB database), or
bench/ingest.py's own (`--mix ingest`, one in ten), then for each message: `compact` with `stored` answering
yes for the sha256 of each attachment the product's parser reads from it (what the
message's Attachment rows hold), and `restore` with those payloads, checked to give
the raw bytes back. No database: the spool's bytea and TOAST are left out (zlib, as a
rough stand-in for TOAST's compression, is printed beside), unless `--postgres` names
a database: the raw, the compacted and the packed bytes then also go into temporary tables
there, as the spool's bytea column holds them, and their sizes (heap, TOAST and
all) are printed. Prints one JSON line:
bytes before and after, in total and per kind, and the CPU (`thread_time`) of
compact and restore per message, median and p95, in total and for attachment mails;
and the same for `pack`/`unpack` (what the spool keeps: compacted, then deflated).
"""

import argparse
import hashlib
import importlib.util
import json
import statistics
import sys
import time
import zlib
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from inboxhub.lib.mail.compact_raw import compact, pack, restore, unpack  # noqa: E402
from inboxhub.lib.mail.parsing import parse_message  # noqa: E402


def bench_ingest():
    """bench/ingest.py, whose mix this measures (loaded by path: `ingest` is also the product's app)."""
    spec = importlib.util.spec_from_file_location("bench_ingest", BASE_DIR / "bench" / "ingest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def postgres_sizes(dsn: str, rows: list[tuple[bytes, bytes, bytes]]) -> dict:
    """The three columns' tables as PostgreSQL stores them (TOAST compression included), in bytes."""
    import psycopg

    sizes = {}
    with psycopg.connect(dsn, autocommit=True) as connection:
        for column, index in (("raw", 0), ("compacted", 1), ("packed", 2)):
            table = f"bench_compact_{column}"
            connection.execute(f"CREATE TEMPORARY TABLE {table} (id serial PRIMARY KEY, raw bytea NOT NULL)")
            # The table's name is one of two literals above, never input.
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {table} (raw) VALUES (%b)", [(row[index],) for row in rows])  # noqa: S608
            connection.execute(f"VACUUM ANALYZE {table}")
            [[size]] = connection.execute(f"SELECT pg_total_relation_size('{table}')").fetchall()
            sizes[f"table_bytes_{column}"] = size
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--mix", choices=["issue", "ingest"], default="issue")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--postgres", help="e.g. postgres://postgres@127.0.0.1:5432/postgres (temporary tables)"
    )
    args = parser.parse_args()

    mix = bench_ingest()
    messages = mix.plan_messages(
        args.messages,
        seed=args.seed,
        addresses=["support@acme.in.example", "sales@acme.in.example", "help@globex.in.example"],
        member=("Ada Lovelace", "ada@acme.example"),
        keys=mix.generate_dkim_key(),
        mix=mix.ISSUE_MIX if args.mix == "issue" else None,
    )
    before = dict.fromkeys(mix.MIX, 0)
    after = dict(before)
    zlib_before = zlib_after = packed_bytes = 0
    stored_rows: list[tuple[bytes, bytes, bytes]] = []
    pack_ms: list[float] = []
    unpack_ms: list[float] = []
    compact_ms: dict[str, list[float]] = {kind: [] for kind in mix.MIX}
    restore_ms: dict[str, list[float]] = {kind: [] for kind in mix.MIX}
    for planned in messages:
        raw = planned.raw
        payloads = {hashlib.sha256(a.payload).hexdigest(): a.payload for a in parse_message(raw).attachments}
        cpu = time.thread_time()
        compacted = compact(raw, payloads.__contains__)
        compact_ms[planned.kind].append((time.thread_time() - cpu) * 1000)
        if compacted is not raw:
            cpu = time.thread_time()
            restored = restore(compacted, payloads.__getitem__)
            restore_ms[planned.kind].append((time.thread_time() - cpu) * 1000)
            assert restored == raw, planned.index
        before[planned.kind] += len(raw)
        after[planned.kind] += len(compacted)
        zlib_before += len(zlib.compress(raw))
        zlib_after += len(zlib.compress(compacted))
        cpu = time.thread_time()
        packed = pack(raw, payloads.__contains__)
        pack_ms.append((time.thread_time() - cpu) * 1000)
        if packed is not raw:
            cpu = time.thread_time()
            assert unpack(packed, payloads.__getitem__) == raw, planned.index
            unpack_ms.append((time.thread_time() - cpu) * 1000)
        packed_bytes += len(packed)
        stored_rows.append((raw, compacted, packed))

    every_compact = [ms for values in compact_ms.values() for ms in values]
    every_restore = [ms for values in restore_ms.values() for ms in values]

    def figures(values: list[float]) -> dict:
        if not values:
            return {}
        return {
            "median": round(statistics.median(values), 3),
            "p95": round(mix.percentile(values, 95), 3),
            "mean": round(statistics.mean(values), 3),
        }

    table_bytes = postgres_sizes(args.postgres, stored_rows) if args.postgres else {}
    print(
        json.dumps(
            {
                "messages": len(messages),
                "mix": args.mix,
                "kinds": {kind: len(values) for kind, values in compact_ms.items()},
                "bytes_before": sum(before.values()),
                "bytes_after": sum(after.values()),
                "saved_percent": round(100 * (1 - sum(after.values()) / sum(before.values())), 1),
                "bytes_by_kind": {kind: [before[kind], after[kind]] for kind in mix.MIX},
                "zlib_bytes_before": zlib_before,
                "zlib_bytes_after": zlib_after,
                "packed_bytes": packed_bytes,
                "pack_cpu_ms": figures(pack_ms),
                "unpack_cpu_ms": figures(unpack_ms),
                "compacted_messages": len(every_restore),
                "compact_cpu_ms": figures(every_compact),
                "compact_cpu_ms_attachment": figures(compact_ms["attachment"]),
                "restore_cpu_ms_compacted": figures(every_restore),
                **table_bytes,
            }
        )
    )


if __name__ == "__main__":
    main()
