"""Mail a member about a conversation assigned to them while they are away or not signed in (issue 17).

Both ways a conversation gets an assignee write the mail inside the
assignment's transaction: by hand (`inboxes.services.assign_conversation`
calls `notify_assignment`) and automatically (`routing.services` builds each
with `assignment_mail` and stores a batch's together). The mail is an
OutboundEmail row written in that transaction, so a rolled-back assignment
mails nobody, and it is handed to a worker only once the transaction commits
(`queue_email`, or `queue_emails` for a batch: one task, one connection); the
row, not the broker, is its copy of record. One mail per assignment; none for
unassigning.

The mail is plain text built from the conversation's stored fields, never from
a message body: no customer HTML reaches it, and every value is flattened to
one line, so nothing in a subject or a name can start a new header or line.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import get_script_prefix, get_urlconf, reverse

from inboxes.models import Conversation
from inboxhub.models import Membership, OutboundEmail
from inboxhub.notifications import assignment_mail_reason
from inboxhub.outbound import queue_email

TEMPLATE = "inboxhub/email/assignment_notification.txt"
SUBJECT_MAX_CHARS = 150
FIELD_MAX_CHARS = 300
# Every control character and Unicode line or paragraph separator: none may break a header or a line.
_LINE_BREAKERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_paused: ContextVar[bool] = ContextVar("assignment_mail_paused", default=False)


@contextmanager
def assignment_mail_paused() -> Iterator[None]:
    """Assign without mailing anyone in this block: a replay of past mail (the demo's week) is no news."""
    token = _paused.set(True)
    try:
        yield
    finally:
        _paused.reset(token)


def one_line(text: str, *, limit: int = FIELD_MAX_CHARS) -> str:
    """The text on one line, whitespace runs as one space, cut to `limit` characters with an ellipsis."""
    text = " ".join(_LINE_BREAKERS.sub(" ", text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@lru_cache(maxsize=1024)
def _account_paths(script_prefix: str, urlconf, subdomain: str) -> tuple[str, str]:
    """An account's thread path up to the conversation's id, and its Notifications page's path.

    Reversed once per account (and prefix and URLconf, which `reverse` reads): two reverses a mail
    were a third of its cost in a batch of automatic assignments (issue 18).
    """
    thread = reverse("inboxes:thread", args=[subdomain, 0])
    head, found, tail = thread.rpartition("/0/")
    assert found and not tail, f"the thread path ends with the conversation's id: {thread}"
    return head, reverse("notification_settings", args=[subdomain])


def notify_assignment(
    conversation: Conversation, assignee: Membership, *, by: Membership | None, reason: str = ""
) -> OutboundEmail | None:
    """Queue the assignee's mail when they are away or not signed in and want it; None when not mailed.

    `by` is the member who assigned it; None for automatic assignment, whose
    `reason` (the decision's summary, D8) the mail quotes. Call it inside the
    assignment's transaction.
    """
    email = assignment_mail(conversation, assignee, by=by, reason=reason)
    if email is None:
        return None
    return queue_email(email.account, kind=email.kind, to=email.to, subject=email.subject, body=email.body)


def assignment_mail(
    conversation: Conversation, assignee: Membership, *, by: Membership | None, reason: str = ""
) -> OutboundEmail | None:
    """The unsaved mail `notify_assignment` queues, or None when nobody is mailed.

    For a batch of assignments written together: `queue_emails` stores them in one INSERT.
    """
    assert assignee.account_id == conversation.account_id, "conversation and assignee in different accounts"
    why = assignment_mail_reason(assignee, by=by)
    if why is None or _paused.get():
        return None
    account = conversation.account
    if account.unverified_founder_id is not None:
        # An account whose founder has not confirmed their address sends no mail at all (issue 16).
        return None
    subject = one_line(conversation.subject, limit=SUBJECT_MAX_CHARS) or "(no subject)"
    contact = conversation.contact
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    threads_path, settings_path = _account_paths(get_script_prefix(), urlconf, account.subdomain)
    context = {
        "first_name": one_line(assignee.user.first_name) or one_line(assignee.user.email),
        "assigned_by": one_line(by.user.full_name or by.user.email) if by is not None else "",
        "reason": one_line(reason),
        "inbox": one_line(conversation.inbox.name),
        "company": one_line(account.company_name),
        "subject": subject,
        "contact": one_line(f"{contact.name} <{contact.email}>" if contact.name else contact.email),
        "why": why,
        "link": f"{settings.SITE_URL}{threads_path}/{conversation.pk}/",
        "settings_link": settings.SITE_URL + settings_path,
    }
    return OutboundEmail(
        account=account,
        kind=OutboundEmail.Kind.ASSIGNMENT_NOTIFICATION,
        to=assignee.user.email,
        subject=f"Assigned to you: {subject}",
        body=render_to_string(TEMPLATE, context),
    )
