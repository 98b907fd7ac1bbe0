"""Print what each account stores: raw mail in the spool (as received, as kept), messages and attachments.

On PostgreSQL, also the search vectors messages still store (`inboxes.search.STORED_VECTOR_DAYS`) and
the largest tables, each with its TOAST and its indexes.
"""

import json

from django.core.management.base import BaseCommand
from django.db import connection
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce, Length
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from inboxes.models import Attachment, Message
from inboxhub.models import Account

MB = 1024 * 1024
LARGEST = 10  # tables listed


class Command(BaseCommand):
    help = "Storage per account: spooled raw mail (kept SPOOL_RETENTION_DAYS), message text and attachments."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON object on stdout")

    def handle(self, *args, as_json: bool, **options):
        report = {
            "accounts": self.per_account(),
            "database_bytes": self.database_bytes(),
            "tables": self.largest_tables(),
        }
        if as_json:
            self.stdout.write(json.dumps(report))
            return
        self.stdout.write(
            f"{'account':<24}{'spool rows':>11}{'spool MB':>10}{'kept MB':>9}{'messages':>10}{'text MB':>9}"
            f"{'files':>8}{'files MB':>10}{'vectors MB':>12}"
        )
        for row in report["accounts"]:
            self.stdout.write(
                f"{row['account']:<24}{row['spool_rows']:>11}{row['spool_bytes'] / MB:>10.1f}"
                f"{row['spool_kept_bytes'] / MB:>9.1f}"
                f"{row['messages']:>10}{row['text_bytes'] / MB:>9.1f}"
                f"{row['attachments']:>8}{row['attachment_bytes'] / MB:>10.1f}"
                f"{row['search_vector_bytes'] / MB:>12.1f}"
            )
        if report["database_bytes"] is not None:
            self.stdout.write(f"database: {report['database_bytes'] / MB:.1f} MB in all")
        if report["tables"]:
            self.stdout.write(f"\n{'table':<32}{'rows':>10}{'heap MB':>9}{'TOAST MB':>10}{'indexes MB':>12}")
        for row in report["tables"]:
            self.stdout.write(
                f"{row['table']:<32}{row['rows']:>10}{row['heap_bytes'] / MB:>9.1f}"
                f"{row['toast_bytes'] / MB:>10.1f}{row['index_bytes'] / MB:>12.1f}"
            )

    def per_account(self) -> list[dict]:
        with scopes_disabled():  # a report across accounts, read by the operator
            spool = _by_account(InboundMessage.objects, rows=Count("pk"), bytes=Sum("size"))
            # What the spool keeps of it: processed mail compacted and deflated (ingest.compaction).
            kept = _by_account(InboundMessage.objects, rows=Count("pk"), bytes=Sum(Length("raw")))
            messages = _by_account(
                Message.objects, rows=Count("pk"), bytes=Sum(Length("text") + Length("html"))
            )
            files = _by_account(Attachment.objects, rows=Count("pk"), bytes=Sum("size"))
            vectors = _stored_vectors()
            accounts = Account.objects.order_by("subdomain").values_list("pk", "subdomain")
        return [
            {
                "account": subdomain,
                "spool_rows": spool.get(pk, (0, 0))[0],
                "spool_bytes": spool.get(pk, (0, 0))[1],
                "spool_kept_bytes": kept.get(pk, (0, 0))[1],
                "messages": messages.get(pk, (0, 0))[0],
                "text_bytes": messages.get(pk, (0, 0))[1],
                "attachments": files.get(pk, (0, 0))[0],
                "attachment_bytes": files.get(pk, (0, 0))[1],
                "search_vector_bytes": vectors.get(pk, 0),
            }
            for pk, subdomain in accounts
        ]

    def database_bytes(self) -> int | None:
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            return cursor.fetchone()[0]

    def largest_tables(self) -> list[dict]:
        """The largest tables: rows (PostgreSQL's estimate), heap, TOAST and indexes, in bytes."""
        if connection.vendor != "postgresql":
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, greatest(c.reltuples, 0)::bigint, pg_relation_size(c.oid),"
                " coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0), pg_indexes_size(c.oid)"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                " ORDER BY pg_total_relation_size(c.oid) DESC LIMIT %s",
                [LARGEST],
            )
            rows = cursor.fetchall()
        return [
            {"table": table, "rows": count, "heap_bytes": heap, "toast_bytes": toast, "index_bytes": indexes}
            for table, count, heap, toast, indexes in rows
        ]


def _stored_vectors() -> dict[int, int]:
    """Bytes of the search vectors each account's messages store (migration 0018; none on SQLite)."""
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT account_id, sum(pg_column_size(search_vector)) FROM inboxes_message"
            " WHERE search_vector IS NOT NULL GROUP BY account_id"
        )
        return dict(cursor.fetchall())


def _by_account(manager, *, rows, bytes) -> dict[int, tuple[int, int]]:
    totals = manager.order_by().values("account_id").annotate(rows=rows, bytes=Coalesce(bytes, 0))
    return {row["account_id"]: (row["rows"], row["bytes"]) for row in totals}
