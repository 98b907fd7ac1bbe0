"""Celery entry points of the inboxes app, under the names its services publish."""

import smtplib

from celery import shared_task

from inboxes import presence, replies, search


@shared_task(
    bind=True,
    name=replies.DELIVER_TASK,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=30,  # 30 s, 1, 2, 4, 8 minutes: a greylisting smarthost lets the reply through on a retry
    max_retries=5,
)
def deliver_reply_task(self, message_pk: int, account_id: int) -> str:
    """Send one queued reply by id; temporary failures come back here until the last attempt."""
    return replies.deliver_reply(
        message_pk, account_id=account_id, last_attempt=self.request.retries >= self.max_retries
    )


@shared_task(name=replies.SWEEP_TASK)
def sweep_replies_task() -> int:
    """Re-enqueue queued replies whose task was lost; scheduled in CELERY_BEAT_SCHEDULE."""
    return replies.sweep_replies()


@shared_task(name="inboxes.tasks.prune_presence_task")
def prune_presence_task() -> int:
    """Drop presence rows of pages closed without a goodbye; scheduled in CELERY_BEAT_SCHEDULE."""
    return presence.prune_presence()


@shared_task(name="inboxes.tasks.forget_old_search_vectors_task")
def forget_old_search_vectors_task() -> int:
    """Drop the stored search vectors of old messages; scheduled in CELERY_BEAT_SCHEDULE."""
    return search.forget_old_vectors()
