"""Mail InboxHub sends on its own behalf (invites, address verifications), delivered by a worker.

`queue_email` stores the mail as a row and, once the caller's transaction
commits, hands its id to Celery under DELIVER_TASK (registered by
`inboxhub.tasks`). `deliver` claims the row, sends it through Django's email
backend (the SMTP backend and the outbound `EMAIL_HOST`/`EMAIL_PORT` in
production) and records the outcome: a temporary error (a connection that
fails, a 4xx answer) goes back to the task to be tried again later; a 5xx
answer, or a temporary error on the last attempt, leaves the row failed with
the server's reason for the admin to read.

Mail written many at a time (the assignment mails of one batch of decisions)
goes through `queue_emails`: one INSERT, and one task per DELIVER_BATCH rows
that `deliver_batch` sends over one connection, claiming the rows in one
UPDATE and recording each outcome in one statement. A mail it could not send
for a temporary reason goes on alone, to the single-mail task and its retries.
"""

import logging
import re
import smtplib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from inboxhub.celery import app as celery_app
from inboxhub.lib.db import sql_datetime
from inboxhub.models import Account, Membership, OutboundEmail

logger = logging.getLogger(__name__)

State = OutboundEmail.State
Kind = OutboundEmail.Kind

DELIVER_TASK = "inboxhub.tasks.deliver_outbound_email"
DELIVER_BATCH_TASK = "inboxhub.tasks.deliver_outbound_emails"
# Mails per batch task: one connection each, well inside the task's time limit at EMAIL_TIMEOUT a step.
DELIVER_BATCH = 50
# A temporary failure in a batch counts as the single-mail task's first try; its next comes this much later.
FIRST_RETRY_SECONDS = 60
SWEEP_TASK = "inboxhub.tasks.sweep_outbound_task"
# The task's retries wait 1, 2, 4 … minutes, at most this long; a queued row quiet for longer lost its task.
RETRY_BACKOFF_MAX_SECONDS = 30 * 60
SWEEP_BATCH = 500
# Room for a worker killed at the hard time limit to be noticed before its claim counts as abandoned.
CLAIM_GRACE_SECONDS = 30
ERROR_MAX_CHARS = 2000
_URL_CREDENTIALS = re.compile(r"(//[^/\s:@]+):[^@\s/]+@")
# RFC 3834: InboxHub's own mail is automatic, so no well-behaved robot answers it.
_HEADERS = {"Auto-Submitted": "auto-generated"}


@transaction.atomic
def queue_email(account: Account, *, kind: str, to: str, subject: str, body: str) -> OutboundEmail:
    """Store a mail to send and hand it to a worker once the caller's transaction commits."""
    email = OutboundEmail.objects.create(account=account, kind=kind, to=to, subject=subject, body=body)
    transaction.on_commit(lambda: _enqueue(email), robust=True)
    return email


def queue_emails(account: Account, emails: list[OutboundEmail]) -> list[OutboundEmail]:
    """Store unsaved mails of one account in one INSERT; hand them to workers once the caller commits."""
    for email in emails:
        assert email.account_id == account.pk, "mail of another account"
    if not emails:
        return []
    stored = OutboundEmail.objects.bulk_create(emails)
    ids = [email.pk for email in stored]
    for start in range(0, len(ids), DELIVER_BATCH):
        chunk = ids[start : start + DELIVER_BATCH]
        transaction.on_commit(lambda chunk=chunk: _enqueue_batch(account.pk, chunk), robust=True)
    return stored


def hand_to_worker(task: str, **kwargs) -> None:
    """Queue a mail that has no account to keep it under (password resets, sign-up's note to someone
    who has a login): the task is its only copy, so a broker that cannot take it is logged, never
    shown; the page answers the same either way and the person can ask again."""
    try:
        celery_app.signature(task, kwargs=kwargs).apply_async()
    except Exception:
        logger.exception("%s could not be queued", task)


def _enqueue(email: OutboundEmail) -> None:
    celery_app.signature(DELIVER_TASK, args=(email.pk, email.account_id)).apply_async()


def _enqueue_batch(account_id: int, ids: list[int]) -> None:
    celery_app.signature(DELIVER_BATCH_TASK, args=(ids, account_id)).apply_async()


def sweep_outbound() -> int:
    """Hand mail whose task was lost back to the workers: Redis down at hand-off, a lost retry, a dead worker.

    The row, never the broker, is the copy of record, as for inbound mail
    (DESIGN "Durability"); a task run twice sends once, since each run must
    claim the row. Returns how many were handed on.
    """
    now = timezone.now()
    abandoned = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + CLAIM_GRACE_SECONDS)
    lost = (
        Q(state=State.QUEUED, attempts=0, created_at__lt=now - timedelta(minutes=1))
        | Q(state=State.QUEUED, claimed_at__lt=now - timedelta(seconds=RETRY_BACKOFF_MAX_SECONDS + 60))
        | Q(state=State.SENDING, claimed_at__lt=abandoned)
    )
    # A sweep across accounts: each row is delivered later inside its own account's scope.
    with scopes_disabled():
        rows = list(OutboundEmail.objects.filter(lost).order_by("pk")[:SWEEP_BATCH])
    for email in rows:
        _enqueue(email)
    return len(rows)


def deliver(outbound_id: int, *, account_id: int, last_attempt: bool) -> str:
    """Send one queued mail and record how it went; a no-op when another run has it or it is done.

    Raises the connection's or server's error when it is temporary and
    `last_attempt` is false, after putting the row back in the queue: the task
    tries again later.
    """
    with scope(account=account_id):
        if not _claim(outbound_id):
            return "skipped"
        email = OutboundEmail.objects.get(pk=outbound_id)
        message = EmailMessage(subject=email.subject, body=email.body, to=[email.to], headers=_HEADERS)
        try:
            message.send(fail_silently=False)
        except (smtplib.SMTPException, OSError) as exc:
            error = describe_error(exc)
            if is_temporary(exc) and not last_attempt:
                _finish(email, State.QUEUED, error=error)
                logger.info("outbound mail %s to %s deferred: %s", email.pk, email.to, error)
                raise
            _finish(email, State.FAILED, error=error)
            logger.warning("outbound mail %s to %s failed: %s", email.pk, email.to, error)
            return State.FAILED
        _finish(email, State.SENT, error="", sent_at=timezone.now())
        return State.SENT


def deliver_batch(outbound_ids: list[int], *, account_id: int) -> dict[str, int]:
    """Send the queued mails among `outbound_ids` over one connection; how many ended in each state.

    Rows another run has, or that are done, are left alone. A temporary
    failure puts that mail back in the queue for the single-mail task to try
    again; one that is no fault of the mail (the server cannot be reached, the
    connection dropped) does so for the rest of the batch too.
    """
    with scope(account=account_id):
        claimed_at, claimed = _claim_batch(outbound_ids, account_id)
        outcomes: dict[int, tuple[str, str]] = {}
        try:
            _send_all(claimed, outcomes)
        finally:
            # Also after a time limit or a crash mid-batch: what was sent is recorded, the rest re-queued.
            for email_id, _, _, _ in claimed:
                outcomes.setdefault(email_id, (State.QUEUED, ""))
            _finish_batch(outcomes, claimed_at)
        for email_id, (state, _) in outcomes.items():
            if state == State.QUEUED:
                celery_app.signature(DELIVER_TASK, args=(email_id, account_id)).apply_async(
                    countdown=FIRST_RETRY_SECONDS, retries=1
                )
    counts: dict[str, int] = {}
    for state, _ in outcomes.values():
        counts[state] = counts.get(state, 0) + 1
    return counts


def _send_all(claimed: list[tuple], outcomes: dict[int, tuple[str, str]]) -> None:
    smtp = get_connection()
    try:
        for email_id, to, subject, body in claimed:
            message = EmailMessage(subject=subject, body=body, to=[to], headers=_HEADERS, connection=smtp)
            try:
                smtp.open()  # kept open across the batch: send_messages closes only what it opened
                smtp.send_messages([message])
            except (smtplib.SMTPException, OSError) as exc:
                error = describe_error(exc)
                if not is_temporary(exc):
                    outcomes[email_id] = (State.FAILED, error)
                    logger.warning("outbound mail %s to %s failed: %s", email_id, to, error)
                    continue
                outcomes[email_id] = (State.QUEUED, error)
                logger.info("outbound mail %s to %s deferred: %s", email_id, to, error)
                if not isinstance(exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused):
                    # The connection is at fault, not this mail: the rest wait for their own retries.
                    for rest_id, *_ in claimed:
                        outcomes.setdefault(rest_id, (State.QUEUED, error))
                    return
            else:
                outcomes[email_id] = (State.SENT, "")
    finally:
        try:
            smtp.close()
        except (smtplib.SMTPException, OSError):
            logger.info("closing the outbound connection failed", exc_info=True)


def _claim_batch(outbound_ids: list[int], account_id: int) -> tuple:
    """Claim the claimable rows among the ids in one UPDATE … RETURNING.

    Returns the claim's time and the rows as (id, to, subject, body), by id.
    """
    now = timezone.now()
    if not outbound_ids:
        return now, []
    abandoned = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + CLAIM_GRACE_SECONDS)
    table, to = OutboundEmail._meta.db_table, connection.ops.quote_name("to")
    ids = ", ".join(["%s"] * len(outbound_ids))
    claim = (
        f"UPDATE {table} SET state = %s, claimed_at = %s, attempts = attempts + 1 "  # noqa: S608
        f"WHERE account_id = %s AND id IN ({ids}) "
        "AND (state = %s OR (state = %s AND claimed_at < %s)) "
        f"RETURNING id, {to}, subject, body"
    )
    # As the ORM writes them: `_finish_batch` matches this claim's time with the ORM (text on SQLite).
    at, before = sql_datetime(now), sql_datetime(abandoned)
    params = [State.SENDING, at, account_id, *outbound_ids, State.QUEUED, State.SENDING, before]
    with connection.cursor() as cursor:
        cursor.execute(claim, params)
        claimed = sorted(cursor.fetchall())
    return now, claimed


def _finish_batch(outcomes: dict[int, tuple[str, str]], claimed_at) -> None:
    """One UPDATE per outcome (state and error), each conditional on this run's claim."""
    by_outcome: dict[tuple[str, str], list[int]] = {}
    for email_id, outcome in outcomes.items():
        by_outcome.setdefault(outcome, []).append(email_id)
    now = timezone.now()
    for (state, error), ids in by_outcome.items():
        fields = {"sent_at": now} if state == State.SENT else {}
        OutboundEmail.objects.filter(pk__in=ids, state=State.SENDING, claimed_at=claimed_at).update(
            state=state, error=error, **fields
        )


def _claim(outbound_id: int) -> bool:
    """Take the row for this run: queued, or left sending by a worker that died past its time limit."""
    now = timezone.now()
    abandoned = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + CLAIM_GRACE_SECONDS)
    claimable = Q(state=State.QUEUED) | Q(state=State.SENDING, claimed_at__lt=abandoned)
    claimed = OutboundEmail.objects.filter(claimable, pk=outbound_id).update(
        state=State.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    return claimed == 1


def _finish(email: OutboundEmail, state: str, **fields) -> None:
    # Conditional on this run's claim: a run that outlived it must not overwrite a newer outcome.
    OutboundEmail.objects.filter(pk=email.pk, state=State.SENDING, claimed_at=email.claimed_at).update(
        state=state, **fields
    )


def is_temporary(exc: Exception) -> bool:
    """Whether trying again later may succeed: connection failures and 4xx answers (RFC 5321 §4.2.1)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return True  # SMTPServerDisconnected, a refused or timed-out connection, a DNS failure


def describe_error(exc: Exception) -> str:
    """The reason in the server's words, for the admin; credentials never appear in it."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        text = "; ".join(_answer(code, reply) for code, reply in exc.recipients.values())
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = _answer(exc.smtp_code, exc.smtp_error)
    else:
        text = str(exc) or type(exc).__name__
    text = _URL_CREDENTIALS.sub(r"\1:***@", text)
    for secret in (settings.EMAIL_HOST_PASSWORD,):
        if secret:
            text = text.replace(secret, "***")
    return text[:ERROR_MAX_CHARS]


def _answer(code: int, reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return f"{code} {' '.join(reply.split())}"


def failed_invites(account: Account) -> QuerySet[OutboundEmail]:
    """Invites that could not be delivered to members who still have not set a password, newest first."""
    still_invited = Membership.objects.filter(
        account=OuterRef("account"),
        user__email__iexact=OuterRef("to"),
        user__password__startswith=UNUSABLE_PASSWORD_PREFIX,
    )
    return account.outbound_emails.filter(
        Exists(still_invited), kind=Kind.INVITE, state=State.FAILED
    ).order_by("-created_at", "-pk")


def latest_verification_email(account: Account, address: str) -> OutboundEmail | None:
    """The newest verification mail sent to `address`, to show how its delivery went."""
    if not address:
        return None
    return (
        account.outbound_emails.filter(kind=Kind.ADDRESS_VERIFICATION, to__iexact=address)
        .order_by("-created_at", "-pk")
        .first()
    )
