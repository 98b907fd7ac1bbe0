"""Celery entry points of the base app, under the names its services publish."""

import smtplib

from celery import shared_task

from inboxhub import outbound, password_reset, signup_mail


@shared_task(
    bind=True,
    name=outbound.DELIVER_TASK,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=60,  # 1, 2, 4, 8, 16 minutes: a greylisting smarthost lets the mail through on a retry
    retry_backoff_max=outbound.RETRY_BACKOFF_MAX_SECONDS,
    max_retries=5,
)
def deliver_outbound_email(self, outbound_id: int, account_id: int) -> str:
    """Send one queued mail by id; temporary failures come back here until the last attempt."""
    return outbound.deliver(
        outbound_id, account_id=account_id, last_attempt=self.request.retries >= self.max_retries
    )


@shared_task(name=outbound.DELIVER_BATCH_TASK)
def deliver_outbound_emails(outbound_ids: list[int], account_id: int) -> dict[str, int]:
    """Send queued mails of one account over one connection; a temporary failure goes on alone."""
    return outbound.deliver_batch(outbound_ids, account_id=account_id)


@shared_task(name=outbound.SWEEP_TASK)
def sweep_outbound_task() -> int:
    """Re-enqueue outbound mail whose task was lost; scheduled in CELERY_BEAT_SCHEDULE."""
    return outbound.sweep_outbound()


@shared_task(
    name=password_reset.RESET_TASK,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=30,
    max_retries=3,
)
def send_password_reset_email(email: str, domain: str, use_https: bool) -> None:
    """Send the reset link the reset page asked for (issue 16); a mail server that fails is tried again."""
    password_reset.send_password_reset(email, domain=domain, use_https=use_https)


@shared_task(
    name=signup_mail.SIGNUP_MAIL_TASK,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=30,
    max_retries=3,
)
def send_signup_mail(to: str, subject: str, body: str) -> None:
    """Send a sign-up mail: the address confirmation, or "you already have a login" (issue 16)."""
    signup_mail.send_signup_mail(to=to, subject=subject, body=body)
