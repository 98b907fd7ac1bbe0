"""Mail InboxHub sends on its own behalf (invites, address verifications), delivered by a worker.

`queue_email` stores the mail as a row and, once the caller's transaction
commits, hands its id to Celery under DELIVER_TASK (registered by
`inboxhub.tasks`). `deliver` claims the row, sends it through Django's email
backend (the SMTP backend and the outbound `EMAIL_HOST`/`EMAIL_PORT` in
production) and records the outcome: a temporary error (a connection that
fails, a 4xx answer) goes back to the task to be tried again later; a 5xx
answer, or a temporary error on the last attempt, leaves the row failed with
the server's reason for the admin to read.
"""

import logging
import re
import smtplib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from inboxhub.celery import app as celery_app
from inboxhub.models import Account, Membership, OutboundEmail

logger = logging.getLogger(__name__)

State = OutboundEmail.State
Kind = OutboundEmail.Kind

DELIVER_TASK = "inboxhub.tasks.deliver_outbound_email"
SWEEP_TASK = "inboxhub.tasks.sweep_outbound_task"
# The task's retries wait 1, 2, 4 … minutes, at most this long; a queued row quiet for longer lost its task.
RETRY_BACKOFF_MAX_SECONDS = 30 * 60
SWEEP_BATCH = 500
# Room for a worker killed at the hard time limit to be noticed before its claim counts as abandoned.
CLAIM_GRACE_SECONDS = 30
ERROR_MAX_CHARS = 2000
_URL_CREDENTIALS = re.compile(r"(//[^/\s:@]+):[^@\s/]+@")


@transaction.atomic
def queue_email(account: Account, *, kind: str, to: str, subject: str, body: str) -> OutboundEmail:
    """Store a mail to send and hand it to a worker once the caller's transaction commits."""
    email = OutboundEmail.objects.create(account=account, kind=kind, to=to, subject=subject, body=body)
    transaction.on_commit(lambda: _enqueue(email), robust=True)
    return email


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
        # RFC 3834: InboxHub's own mail is automatic, so no well-behaved robot answers it.
        headers = {"Auto-Submitted": "auto-generated"}
        message = EmailMessage(subject=email.subject, body=email.body, to=[email.to], headers=headers)
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
