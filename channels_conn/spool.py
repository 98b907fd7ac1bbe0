"""The durable inbound spool: commit raw mail before 250, hand ids to the workers, track each row (G2, G5).

One row per SMTP transaction and account. The ingress commits it, then hands
only its id to Celery, under the task name PROCESS_BATCH_TASK that the
ingest pipeline registers; a periodic sweep re-enqueues whatever Redis lost
or a dead worker left, so the row, never the broker, is the copy of record.
The pipeline claims a row, and marks it processed or failed, here.
"""

import json
import logging
import re
from datetime import timedelta

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from channels_conn.models import InboundMessage
from channels_conn.recipients import accounts_of
from inboxhub.celery import app as celery_app
from inboxhub.lib.db import on_live_connection
from inboxhub.lib.mail.parsing import storable_text

logger = logging.getLogger(__name__)

State = InboundMessage.State

# The pipeline's tasks, by the names older ingresses queued them under: the spool publishes, the ingest
# app (above every other in the layers) defines them.
PROCESS_TASK = "channels_conn.tasks.process_inbound"
PROCESS_BATCH_TASK = "channels_conn.tasks.process_inbound_batch"
SWEEP_TASK = "channels_conn.tasks.sweep_inbound_task"
PRUNE_TASK = "channels_conn.tasks.prune_spool_task"
PRUNE_BATCH = 1000
# Room for the worker to die and be noticed after a hard time limit before a claim counts as abandoned.
CLAIM_GRACE_SECONDS = 30
# First retry a minute after a failure, then doubling: 1, 2, 4, 8 … minutes.
RETRY_BACKOFF_SECONDS = 60
SWEEP_BATCH = 500
ERROR_MAX_CHARS = 2000
_URL_CREDENTIALS = re.compile(r"(//[^/\s:@]+):[^@\s/]+@")
_SPOOL_COLUMNS = (
    "account",
    "raw",
    "size",
    "mail_from",
    "rcpt_tos",
    "peer_ip",
    "helo",
    "received_at",
    "state",
    "attempts",
    "error",
)
_SPOOL_VALUES = "(%s, %b, %s, %s, %s::jsonb, %s::inet, %s, %s, %s, %s, %s)"


def _spool_insert(rows: int) -> str:
    # %b: the raw message travels as binary, neither escaped by the client nor parsed by the server.
    return (
        f"INSERT INTO {InboundMessage._meta.db_table} "  # noqa: S608 - names from the model, not input
        f"({', '.join(InboundMessage._meta.get_field(name).column for name in _SPOOL_COLUMNS)}) "
        f"VALUES {', '.join([_SPOOL_VALUES] * rows)} RETURNING id"
    )


class CannotIngest(Exception):
    """The message itself is at fault: trying again cannot help, so it is failed at once (G5)."""


def store_inbound(
    *,
    raw: bytes,
    mail_from: str,
    rcpt_tos: list[str],
    peer_ip: str | None,
    helo: str,
    accounts: dict[str, int] | None = None,
) -> list[InboundMessage]:
    """Commit one received message to the spool, then enqueue its processing (G2).

    Returning means the rows are committed: the caller may answer 250. A broker
    failure after the commit is only logged; the sweep enqueues the rows later.
    """
    rows = spool_inbound(
        raw=raw, mail_from=mail_from, rcpt_tos=rcpt_tos, peer_ip=peer_ip, helo=helo, accounts=accounts
    )
    enqueue_inbound_batch([row.pk for row in rows])
    return rows


def spool_inbound(
    *,
    raw: bytes,
    mail_from: str,
    rcpt_tos: list[str],
    peer_ip: str | None,
    helo: str,
    accounts: dict[str, int] | None = None,
) -> list[InboundMessage]:
    """Commit one received message to the spool, a row per account, without enqueuing them (G2, A2).

    `accounts`: the account of each recipient, as RCPT learnt it; looked up
    when not given. Returning means the rows are committed. They hold the
    whole message or do not exist (one INSERT in autocommit), so a partial
    message is never processed, as Postfix's queue file counts only with its
    END record. An ingress killed after the INSERT reached the server and
    before its 250 leaves rows the sender did not hear about: its retry stores
    them again and processing dedupes the two into one message (F2; RFC 5321
    prefers a duplicate to a loss).
    """
    if accounts is None:
        accounts = accounts_of(rcpt_tos)
    by_account: dict[int | None, list[str]] = {}
    for recipient in rcpt_tos:
        by_account.setdefault(accounts.get(recipient), []).append(recipient)
    common = {
        "raw": raw,
        "size": len(raw),
        # What the client said, as far as a text column holds it: a NUL would fail the INSERT every time.
        "mail_from": storable_text(mail_from),
        "peer_ip": peer_ip,
        "helo": storable_text(helo)[:255],
        "received_at": timezone.now(),
        "state": State.RECEIVED.value,
        "attempts": 0,
        "error": "",
    }
    rows = [common | {"account": account_id, "rcpt_tos": group} for account_id, group in by_account.items()]

    def insert() -> list[InboundMessage]:
        if connection.in_atomic_block:
            raise RuntimeError("the spool rows must commit on their own, outside any other transaction")
        if connection.vendor != "postgresql":
            # make run's SQLite: the hand-written statement below is PostgreSQL's dialect.
            with transaction.atomic(durable=True):
                return [InboundMessage.objects.create(**_model_fields(row)) for row in rows]
        _limit_statement_time(settings.SMTP_DB_TIMEOUT)
        # One hand-written statement rather than the ORM's create(), on a psycopg cursor of its own
        # rather than Django's: the ingress is CPU-bound, and the model's save machinery and Django's
        # client-side binding (the message escaped into the SQL text) cost more than the statement
        # (issue 4). Django's connection is in autocommit mode here, so the INSERT commits on its own.
        values = [
            json.dumps(row[name]) if name == "rcpt_tos" else row[name]
            for row in rows
            for name in _SPOOL_COLUMNS
        ]
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            ids = [pk for (pk,) in cursor.execute(_spool_insert(len(rows)), values).fetchall()]
        return [InboundMessage(pk=pk, **_model_fields(row)) for pk, row in zip(ids, rows, strict=True)]

    return on_live_connection(insert)


def _model_fields(row: dict) -> dict:
    return {("account_id" if name == "account" else name): value for name, value in row.items()}


def _limit_statement_time(seconds: int) -> None:
    # Better a 451 the sender retries than a session hanging past the client's patience. Set once per
    # database session (and value), not per message: each SET is a round trip. Outside the spool's
    # transaction, so that its rollback cannot undo the setting.
    if connection.vendor != "postgresql":
        return
    connection.ensure_connection()
    session = (connection.connection.info.backend_pid, seconds)
    if getattr(connection, "spool_statement_timeout", None) != session:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, false)", [f"{seconds}s"])
        connection.spool_statement_timeout = session


def enqueue_inbound(inbound_id: int) -> bool:
    """Hand a committed spool row's id to the workers; False when the broker refused it (swept later)."""
    return enqueue_inbound_batch([inbound_id]) == 1


def enqueue_inbound_batch(inbound_ids: list[int]) -> int:
    """Hand several committed rows' ids to the workers; how many the broker took.

    One task per INGEST_BATCH_SIZE ids, all on one producer: a task message
    per id cost a quarter of the CPU-bound ingress's time (issue 4). Stops at
    the first refusal; the sweep enqueues the rest. Without a broker
    (task_always_eager) each batch runs here and now.
    """
    size = settings.INGEST_BATCH_SIZE
    sent = 0
    try:
        with celery_app.producer_or_acquire() as producer:
            for start in range(0, len(inbound_ids), size):
                chunk = inbound_ids[start : start + size]
                celery_app.signature(PROCESS_BATCH_TASK, args=(chunk,)).apply_async(producer=producer)
                sent += len(chunk)
    except Exception:
        logger.warning(
            "could not enqueue %s inbound messages; the sweep will retry",
            len(inbound_ids) - sent,
            exc_info=True,
        )
    return sent


def connect_to_broker() -> bool:
    """Open the broker connection the ingress publishes on, before the first message needs it.

    Loads the transport and connects, so the first messages do not wait for
    that, and a broker that is down shows in the log at startup. Mail is
    accepted either way: the sweep enqueues what could not be published.
    """
    if celery_app.conf.task_always_eager:  # no broker: tasks run in the ingress itself
        return True
    try:
        with celery_app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=1)
    except Exception:
        logger.warning("the broker is not reachable; accepted mail waits in the spool for it", exc_info=True)
        return False
    return True


_NO_WAIT_FOR_DISK = "SET LOCAL synchronous_commit TO OFF"


def commit_without_waiting_for_disk() -> None:
    """Let this transaction's COMMIT return before its WAL reaches the disk (about 4 ms of fsync saved).

    Only for what the worker derives from a spool row, never for the row
    itself, which the ingress commits synchronously before 250. A PostgreSQL
    crash can lose the last fraction of a second of such commits, all at
    once and in order (the WAL is sequential, so no durable write can build
    on a lost one); the row is then back in `received` or a stale claim, and
    the sweep processes it again.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_NO_WAIT_FOR_DISK)


def _stale_claim_before(now):
    return now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + CLAIM_GRACE_SECONDS)


def claim_inbound(inbound_id: int, now) -> InboundMessage | None:
    """The row, claimed by one conditional UPDATE … RETURNING; None when it is not ours to process.

    Committed on its own before any work, so a worker that dies mid-message
    still used up an attempt (F6); the sweep fails a row that kills every worker.
    """
    table = InboundMessage._meta.db_table
    claim = (
        f"UPDATE {table} SET state = %s, claimed_at = %s, attempts = attempts + 1 "  # noqa: S608
        "WHERE id = %s AND attempts < %s "
        "AND (state = %s OR (state = %s AND claimed_at < %s)) RETURNING *"
    )
    params = [
        State.PROCESSING,
        now,
        inbound_id,
        settings.INGEST_MAX_ATTEMPTS,
        State.RECEIVED,
        State.PROCESSING,
        _stale_claim_before(now),
    ]
    if connection.vendor == "postgresql":
        # One round trip instead of four (BEGIN, SET LOCAL, UPDATE, COMMIT), a few a message (issue 18):
        # statements sent together run as one transaction, committed once the last is done. The
        # UPDATE's rows are the first result, which is what the model is read from.
        return next(iter(InboundMessage.objects.raw(f"{claim}; {_NO_WAIT_FOR_DISK}", params)), None)
    with transaction.atomic():
        claimed = list(InboundMessage.objects.raw(claim, params))
    return claimed[0] if claimed else None


def _claimed(inbound: InboundMessage):
    return InboundMessage.objects.filter(pk=inbound.pk, state=State.PROCESSING, claimed_at=inbound.claimed_at)


def mark_processed(inbound: InboundMessage) -> None:
    """Mark a claimed row processed, in the transaction that stores the messages it became."""
    if connection.vendor != "postgresql":
        _claimed(inbound).update(state=State.PROCESSED, processed_at=timezone.now(), error="")
        return
    # Hand-written, with the transaction's commit setting in the same round trip: one statement of
    # every message, and the ORM's update cost ten times its SQL's CPU (issue 18). The same
    # conditions as `_claimed`: only the claim that is still ours.
    table = InboundMessage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET state = %s, processed_at = %s, error = '' "  # noqa: S608
            f"WHERE id = %s AND state = %s AND claimed_at = %s; {_NO_WAIT_FOR_DISK}",
            [State.PROCESSED, timezone.now(), inbound.pk, State.PROCESSING, inbound.claimed_at],
        )


def mark_failed(inbound: InboundMessage, exc: BaseException) -> str:
    """Record a claimed row's failed attempt; its new state: `received` for a retry, or `failed` (G5).

    Failed at once when the message itself is at fault (CannotIngest), else
    after INGEST_MAX_ATTEMPTS. `claimed_at` stays: it is when the last attempt
    started, which the sweep's backoff reads.
    """
    given_up = isinstance(exc, CannotIngest) or inbound.attempts >= settings.INGEST_MAX_ATTEMPTS
    state = State.FAILED if given_up else State.RECEIVED
    _claimed(inbound).update(state=state, error=describe_error(exc))
    return state


def describe_error(exc: BaseException) -> str:
    """The reason an admin reads on the failed-messages page: type and message, no credentials.

    Storable whatever the exception quotes of the message, or the failure itself could not be recorded.
    """
    text = str(exc) if isinstance(exc, CannotIngest) else f"{type(exc).__name__}: {exc}"
    return storable_text(_URL_CREDENTIALS.sub(r"\1:***@", text))[:ERROR_MAX_CHARS]


@transaction.atomic
def retry_inbound(inbound: InboundMessage) -> bool:
    """Put a failed message back in the queue with a fresh set of attempts (G5).

    The caller checks the acting admin may see the message's recipients.
    Returns False when the row is not (or no longer) failed.
    """
    reset = InboundMessage.objects.filter(pk=inbound.pk, state=State.FAILED).update(
        state=State.RECEIVED, attempts=0, error="", claimed_at=None
    )
    if reset != 1:
        return False
    inbound.refresh_from_db()
    transaction.on_commit(lambda: enqueue_inbound(inbound.pk), robust=True)
    return True


def _due_for_retry(now) -> Q:
    """Received rows never tried, or whose last attempt is older than their backoff."""
    due = Q(attempts=0)
    for attempts in range(1, settings.INGEST_MAX_ATTEMPTS):
        backoff = timedelta(seconds=RETRY_BACKOFF_SECONDS * 2 ** (attempts - 1))
        due |= Q(attempts=attempts, claimed_at__lt=now - backoff)
    return Q(state=State.RECEIVED) & due


def sweep_inbound(*, older_than_seconds: int = 60) -> int:
    """Re-enqueue spooled messages nobody finished: lost by Redis, left by a dead worker, due a retry.

    Returns how many were enqueued. Claims that outlived the task time limit
    on their last attempt are marked failed here, since no worker will.
    """
    now = timezone.now()
    stale = _stale_claim_before(now)
    abandoned = InboundMessage.objects.filter(
        state=State.PROCESSING, claimed_at__lt=stale, attempts__gte=settings.INGEST_MAX_ATTEMPTS
    ).update(
        state=State.FAILED,
        error=f"Gave up after {settings.INGEST_MAX_ATTEMPTS} attempts: the worker died mid-task each time.",
    )
    if abandoned:
        logger.warning("marked %s abandoned inbound messages failed", abandoned)
    pending = (
        InboundMessage.objects.filter(received_at__lt=now - timedelta(seconds=older_than_seconds))
        .filter(_due_for_retry(now) | Q(state=State.PROCESSING, claimed_at__lt=stale))
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    enqueued = enqueue_inbound_batch(list(pending))
    if enqueued:
        logger.info("sweep re-enqueued %s inbound messages", enqueued)
    return enqueued


def prune_spool(*, retention_days: int | None = None, batch: int = PRUNE_BATCH) -> int:
    """Delete spooled mail processed more than `retention_days` ago (SPOOL_RETENTION_DAYS); how many.

    Its conversations keep every message and attachment; only the raw copy goes (a Message's
    `inbound` becomes null). Received, processing and failed mail is never pruned. Deleted in
    batches of `batch` rows, each its own short statement, so the ingress never waits long.
    """
    days = settings.SPOOL_RETENTION_DAYS if retention_days is None else retention_days
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    expired = InboundMessage.objects.filter(state=State.PROCESSED, received_at__lt=cutoff)
    deleted = 0
    while ids := list(expired.order_by("received_at", "pk").values_list("pk", flat=True)[:batch]):
        count, _ = InboundMessage.objects.filter(pk__in=ids).delete()
        deleted += count
    if deleted:
        logger.info("pruned %s processed inbound messages older than %s days", deleted, days)
    return deleted


def ingest_counts(*, pending_after_seconds: int = 60) -> dict[str, int]:
    """Counts by state, and `pending`: received or processing for longer than a minute (G5)."""
    by_state = dict(
        InboundMessage.objects.order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    counts = {state: by_state.get(state, 0) for state in State.values}
    counts["pending"] = InboundMessage.objects.filter(
        state__in=[State.RECEIVED, State.PROCESSING],
        received_at__lt=timezone.now() - timedelta(seconds=pending_after_seconds),
    ).count()
    return counts
