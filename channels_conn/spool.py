"""The durable inbound spool: commit raw mail before 250, process it at least once (G2, G5).

One row per SMTP transaction. The ingress commits it, then hands only its id to
Celery; a periodic sweep re-enqueues whatever Redis lost or a dead worker left,
so the row, never the broker, is the copy of record.
"""

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from channels_conn.models import InboundMessage

logger = logging.getLogger(__name__)

State = InboundMessage.State
T = TypeVar("T")

# Room for the worker to die and be noticed after a hard time limit before a claim counts as abandoned.
CLAIM_GRACE_SECONDS = 30
# First retry a minute after a failure, then doubling: 1, 2, 4, 8 … minutes.
RETRY_BACKOFF_SECONDS = 60
SWEEP_BATCH = 500
ERROR_MAX_CHARS = 2000
_URL_CREDENTIALS = re.compile(r"(//[^/\s:@]+):[^@\s/]+@")
_SPOOL_COLUMNS = (
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
# %b: the raw message travels as binary, neither escaped by the client nor parsed by the server.
_SPOOL_INSERT = (
    f"INSERT INTO {InboundMessage._meta.db_table} "  # noqa: S608 - names from the model, not input
    f"({', '.join(InboundMessage._meta.get_field(name).column for name in _SPOOL_COLUMNS)}) "
    "VALUES (%b, %s, %s, %s::jsonb, %s::inet, %s, %s, %s, %s, %s) RETURNING id"
)


def store_inbound(
    *, raw: bytes, mail_from: str, rcpt_tos: list[str], peer_ip: str | None, helo: str
) -> InboundMessage:
    """Commit one received message to the spool, then enqueue its processing (G2).

    Returning means the row is committed: the caller may answer 250. A broker
    failure after the commit is only logged; the sweep enqueues the row later.
    """
    inbound = spool_inbound(raw=raw, mail_from=mail_from, rcpt_tos=rcpt_tos, peer_ip=peer_ip, helo=helo)
    enqueue_inbound(inbound.pk)
    return inbound


def spool_inbound(
    *, raw: bytes, mail_from: str, rcpt_tos: list[str], peer_ip: str | None, helo: str
) -> InboundMessage:
    """Commit one received message to the spool and return its row, without enqueuing it (G2).

    Returning means the row is committed. The row holds the whole message or
    does not exist (one INSERT in autocommit), so a partial message is never
    processed, as Postfix's queue file counts only with its END record. An
    ingress killed after the INSERT reached the server and before its 250
    leaves a row the sender did not hear about: its retry stores a second row
    and processing dedupes the two into one message (F2; RFC 5321 prefers a
    duplicate to a loss).
    """
    fields = {
        "raw": raw,
        "size": len(raw),
        "mail_from": mail_from,
        "rcpt_tos": json.dumps(rcpt_tos),
        "peer_ip": peer_ip,
        "helo": helo[:255],
        "received_at": timezone.now(),
        "state": State.RECEIVED.value,
        "attempts": 0,
        "error": "",
    }

    def insert() -> InboundMessage:
        if connection.in_atomic_block:
            raise RuntimeError("the spool row must commit on its own, outside any other transaction")
        if connection.vendor != "postgresql":
            # make run's SQLite: the hand-written statement below is PostgreSQL's dialect.
            with transaction.atomic(durable=True):
                return InboundMessage.objects.create(**(fields | {"rcpt_tos": rcpt_tos}))
        _limit_statement_time(settings.SMTP_DB_TIMEOUT)
        # One hand-written statement rather than the ORM's create(), on a psycopg cursor of its own
        # rather than Django's: the ingress is CPU-bound, and the model's save machinery and Django's
        # client-side binding (the message escaped into the SQL text) cost more than the statement
        # (issue 4). Django's connection is in autocommit mode here, so the INSERT commits on its own.
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            (pk,) = cursor.execute(_SPOOL_INSERT, [fields[name] for name in _SPOOL_COLUMNS]).fetchone()
        return InboundMessage(pk=pk, **(fields | {"rcpt_tos": rcpt_tos}))

    return on_live_connection(insert)


def on_live_connection(func: Callable[[], T]) -> T:
    """Run a database call; when the server had dropped the connection, once more on a fresh one.

    Replaces a health check before every command (CONN_HEALTH_CHECKS after
    close_old_connections), which costs a round trip each time: checking only
    after a failure costs nothing while all is well. A timeout, a refused
    connection or any error on a working connection is raised as it is.
    Retrying an INSERT whose COMMIT was lost with the connection may store a
    message twice; processing dedupes it by Message-ID (G4), as it does a
    sender's retry after 451.
    """
    before = connection.connection
    try:
        return func()
    except (OperationalError, InterfaceError):
        # No connection before the call: connecting failed, and at once again would too.
        if before is None or connection.in_atomic_block:
            raise
        # A transaction whose rollback failed has replaced the broken connection already.
        if connection.connection is before:
            if connection.is_usable():
                raise
            connection.close()
        logger.warning("the database connection was lost; trying once more on a new one")
    return func()


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
    the first refusal; the sweep enqueues the rest.
    """
    from channels_conn.tasks import process_inbound_batch

    size = settings.INGEST_BATCH_SIZE
    sent = 0
    try:
        with process_inbound_batch.app.producer_or_acquire() as producer:
            for start in range(0, len(inbound_ids), size):
                chunk = inbound_ids[start : start + size]
                process_inbound_batch.apply_async((chunk,), producer=producer)
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
    from channels_conn.tasks import process_inbound_batch

    if process_inbound_batch.app.conf.task_always_eager:  # no broker: tasks run in the ingress itself
        return True
    try:
        with process_inbound_batch.app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=1)
    except Exception:
        logger.warning("the broker is not reachable; accepted mail waits in the spool for it", exc_info=True)
        return False
    return True


def _commit_without_waiting_for_disk() -> None:
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
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _stale_claim_before(now):
    return now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + CLAIM_GRACE_SECONDS)


class CannotIngest(Exception):
    """The message itself is at fault: trying again cannot help, so it is failed at once (G5)."""


def process_inbound_message(inbound_id: int) -> str:
    """Claim a spooled message, ingest it, and record the outcome (G3, G5); returns the new state.

    Safe to run twice or concurrently: only the worker whose conditional update
    claims the row processes it. A failure goes back to `received` for the sweep
    to retry with backoff, and becomes `failed` after INGEST_MAX_ATTEMPTS, or at
    once when the message itself is at fault (CannotIngest).
    """
    now = timezone.now()
    inbound = on_live_connection(lambda: _claim(inbound_id, now))
    if inbound is None:
        return "skipped"
    mine = InboundMessage.objects.filter(pk=inbound_id, state=State.PROCESSING, claimed_at=now)
    try:
        # Imported here so a broken ingest module fails attempts visibly instead of the worker.
        from inboxes.ingest import ingest_inbound

        # The messages and the row's processed mark commit together: one commit per message.
        with transaction.atomic():
            ingest_inbound(inbound)
            mine.update(state=State.PROCESSED, processed_at=timezone.now(), error="")
            _commit_without_waiting_for_disk()
    except Exception as exc:
        given_up = isinstance(exc, CannotIngest) or inbound.attempts >= settings.INGEST_MAX_ATTEMPTS
        state = State.FAILED if given_up else State.RECEIVED
        logger.warning("inbound #%s attempt %s failed", inbound_id, inbound.attempts, exc_info=True)
        # claimed_at stays: it is when the last attempt started, which the sweep's backoff reads.
        mine.update(state=state, error=describe_error(exc))
        return state
    return State.PROCESSED


def process_inbound_batch(inbound_ids: list[int]) -> dict[str, str]:
    """Process each id as `process_inbound_message` does; each id's outcome by id (as a string).

    A message fails or succeeds on its own. None starts after INGEST_BATCH_SECONDS:
    the rest are enqueued anew (or left to the sweep), so a slow message never
    eats into the next one's share of the task's time limits.
    """
    deadline = time.monotonic() + settings.INGEST_BATCH_SECONDS
    outcomes: dict[str, str] = {}
    for position, inbound_id in enumerate(inbound_ids):
        if position and time.monotonic() > deadline:  # the first always runs: every batch makes progress
            rest = inbound_ids[position:]
            enqueue_inbound_batch(rest)
            outcomes.update((str(pk), "requeued") for pk in rest)
            break
        outcomes[str(inbound_id)] = process_inbound_message(inbound_id)
    return outcomes


def _claim(inbound_id: int, now) -> InboundMessage | None:
    """The row, claimed by one conditional UPDATE … RETURNING; None when it is not ours to process.

    Committed on its own before any work, so a worker that dies mid-message
    still used up an attempt (F6); the sweep fails a row that kills every worker.
    """
    table = InboundMessage._meta.db_table
    with transaction.atomic():
        _commit_without_waiting_for_disk()
        claimed = list(
            InboundMessage.objects.raw(
                f"UPDATE {table} SET state = %s, claimed_at = %s, attempts = attempts + 1 "  # noqa: S608
                "WHERE id = %s AND attempts < %s "
                "AND (state = %s OR (state = %s AND claimed_at < %s)) RETURNING *",
                [
                    State.PROCESSING,
                    now,
                    inbound_id,
                    settings.INGEST_MAX_ATTEMPTS,
                    State.RECEIVED,
                    State.PROCESSING,
                    _stale_claim_before(now),
                ],
            )
        )
    return claimed[0] if claimed else None


def describe_error(exc: BaseException) -> str:
    """The reason an admin reads on the failed-messages page: type and message, no credentials."""
    text = str(exc) if isinstance(exc, CannotIngest) else f"{type(exc).__name__}: {exc}"
    return _URL_CREDENTIALS.sub(r"\1:***@", text)[:ERROR_MAX_CHARS]


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
