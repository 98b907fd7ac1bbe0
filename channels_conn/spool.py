"""The durable inbound spool: commit raw mail before 250, process it at least once (G2, G5).

One row per SMTP transaction. The ingress commits it, then hands only its id to
Celery; a periodic sweep re-enqueues whatever Redis lost or a dead worker left,
so the row, never the broker, is the copy of record.
"""

import logging
import re
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from channels_conn.models import InboundMessage

logger = logging.getLogger(__name__)

State = InboundMessage.State

# Room for the worker to die and be noticed after a hard time limit before a claim counts as abandoned.
CLAIM_GRACE_SECONDS = 30
# First retry a minute after a failure, then doubling: 1, 2, 4, 8 … minutes.
RETRY_BACKOFF_SECONDS = 60
SWEEP_BATCH = 500
ERROR_MAX_CHARS = 2000
_URL_CREDENTIALS = re.compile(r"(//[^/\s:@]+):[^@\s/]+@")


def store_inbound(
    *, raw: bytes, mail_from: str, rcpt_tos: list[str], peer_ip: str | None, helo: str
) -> InboundMessage:
    """Commit one received message to the spool, then enqueue its processing (G2).

    Returning means the row is committed: the caller may answer 250. A broker
    failure after the commit is only logged; the sweep enqueues the row later.
    """
    # The ingress thread may hold a connection the database has since dropped.
    close_old_connections()
    with transaction.atomic(durable=True):
        _limit_statement_time(settings.SMTP_DB_TIMEOUT)
        inbound = InboundMessage.objects.create(
            raw=raw,
            size=len(raw),
            mail_from=mail_from,
            rcpt_tos=rcpt_tos,
            peer_ip=peer_ip,
            helo=helo[:255],
        )
    _enqueue(inbound.pk)
    return inbound


def _limit_statement_time(seconds: int) -> None:
    # Better a 451 the sender retries than a session hanging past the client's patience.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{seconds}s"])


def _enqueue(inbound_id: int) -> bool:
    from channels_conn.tasks import process_inbound

    try:
        process_inbound.delay(inbound_id)
    except Exception:
        # Redis down or unreachable: the row is committed and the sweep will pick it up.
        logger.warning("could not enqueue inbound #%s; the sweep will retry", inbound_id, exc_info=True)
        return False
    return True


def _stale_claim_before(now):
    return now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + CLAIM_GRACE_SECONDS)


def process_inbound_message(inbound_id: int) -> str:
    """Claim a spooled message, ingest it, and record the outcome (G3, G5); returns the new state.

    Safe to run twice or concurrently: only the worker whose conditional update
    claims the row processes it. A failure goes back to `received` for the sweep
    to retry with backoff, and becomes `failed` after INGEST_MAX_ATTEMPTS.
    """
    now = timezone.now()
    claimable = Q(state=State.RECEIVED) | Q(state=State.PROCESSING, claimed_at__lt=_stale_claim_before(now))
    claimed = InboundMessage.objects.filter(
        claimable, pk=inbound_id, attempts__lt=settings.INGEST_MAX_ATTEMPTS
    ).update(state=State.PROCESSING, claimed_at=now, attempts=F("attempts") + 1)
    if claimed != 1:
        return "skipped"
    inbound = InboundMessage.objects.get(pk=inbound_id)
    mine = InboundMessage.objects.filter(pk=inbound_id, state=State.PROCESSING, claimed_at=now)
    try:
        # Imported here so a broken ingest module fails attempts visibly instead of the worker.
        from inboxes.ingest import ingest_inbound

        ingest_inbound(inbound)
    except Exception as exc:
        state = State.FAILED if inbound.attempts >= settings.INGEST_MAX_ATTEMPTS else State.RECEIVED
        logger.warning("inbound #%s attempt %s failed", inbound_id, inbound.attempts, exc_info=True)
        # claimed_at stays: it is when the last attempt started, which the sweep's backoff reads.
        mine.update(state=state, error=describe_error(exc))
        return state
    mine.update(state=State.PROCESSED, processed_at=timezone.now(), error="")
    return State.PROCESSED


def describe_error(exc: BaseException) -> str:
    """The reason an admin reads on the failed-messages page: type and message, no credentials."""
    text = f"{type(exc).__name__}: {exc}"
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
    transaction.on_commit(lambda: _enqueue(inbound.pk), robust=True)
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
    enqueued = 0
    for inbound_id in pending:
        if not _enqueue(inbound_id):
            break
        enqueued += 1
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
