"""The demo's week of mail, received through the real ingest path (issue 14, point 9).

Each mail of `week.WEEK` is built into RFC 5322 bytes, committed to the spool
and processed by the ingest pipeline synchronously, exactly as mail from the
SMTP ingress is: parsed, authenticated, threaded, stored, routed, made a
ticket. Agents' answers go through the composer's `send_reply` and are marked
sent without sending anything. Every row a step stamps with the clock then
takes the step's time (`_retime`), so the inbox reads like the last seven days.

Safe to run again: a step whose Message-ID the inbox has is skipped, and an
agent's action runs only right after the steps it follows were stored.
"""

import logging
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from ipaddress import ip_network

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Case, DateTimeField, F, Value, When
from django.test.utils import override_settings
from django.utils import timezone
from django_scopes import scope

from channels_conn import spool
from channels_conn.models import FallbackAddress, InboundMessage
from inboxes.models import Conversation, Inbox, Message
from inboxes.notifications import assignment_mail_paused
from inboxes.replies import send_reply
from inboxes.services import assign_conversation, set_conversation_status
from inboxhub.demo_mail.week import WEEK, Act, Mail, Reply, Thread
from inboxhub.models import Account, Membership
from ingest import pipeline
from tickets.models import Stage, Ticket
from tickets.services import move_ticket

# The demo's mail is handed over by this machine, as `make run`'s local trials are: it counts as
# authenticated (G8) without a DNS lookup, so seeding takes no network and members' forwards are trusted.
PEER_IP = "127.0.0.1"
PEER_NETWORK = ip_network("127.0.0.1/32")
# Whoever answers a conversation nobody is assigned to.
DEFAULT_AGENT = "ada@acme.example"
# The apps whose rows carry an account, and so may be stamped by a step of the week.
TENANT_APPS = ["inboxhub", "channels_conn", "inboxes", "routing", "tickets"]


class SeedingFailed(Exception):
    """A demo mail did not make it through the pipeline: the demo is wrong, not the mail."""


def seed_week(account: Account, week: list[Thread] = WEEK) -> int:
    """Receive the week's mail and the agents' answers in the account's inboxes; how many steps were new.

    Must run outside any transaction: the spool commits each mail on its own, as the ingress does.
    """
    now = timezone.now()
    seeded = 0
    with (
        override_settings(TRUSTED_NETWORKS=[*settings.TRUSTED_NETWORKS, PEER_NETWORK]),
        scope(account=account),
        _quiet_task_log(),
        assignment_mail_paused(),  # last week's assignments are no news to mail the members (issue 17)
    ):
        inboxes = {inbox.name: inbox for inbox in Inbox.objects.filter(account=account)}
        marks: list[tuple[datetime, datetime]] = []
        for thread in week:
            seeded += _seed_thread(account, inboxes[thread.inbox], thread, now, marks)
        _retime(account, marks)
    return seeded


@contextmanager
def _quiet_task_log():
    # Each reply's delivery task still runs (in-process without Redis) and finds the reply already sent:
    # its "succeeded: 'skipped'" line, once per reply, would only bury `make run`'s banner.
    trace = logging.getLogger("celery.app.trace")
    level = trace.level
    trace.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        trace.setLevel(level)


def _seed_thread(
    account: Account, inbox: Inbox, thread: Thread, now: datetime, marks: list[tuple[datetime, datetime]]
) -> int:
    # Each mail's and answer's Message-ID, without angle brackets, by step key; which the inbox has.
    ids = {
        step.key: _incoming_id(step) if isinstance(step, Mail) else _reply_id(account, step)
        for step in thread.steps
        if not isinstance(step, Act)
    }
    stored = set(
        Message.objects.filter(account=account, inbox=inbox, message_id__in=ids.values()).values_list(
            "message_id", flat=True
        )
    )
    conversation: Conversation | None = None
    seeded = 0
    fresh = False  # the step before was stored by this run
    for step in thread.steps:
        when = now - step.at
        if isinstance(step, Act):
            if fresh:
                marks.append((timezone.now(), when))
                _act(account, conversation, step)
                seeded += 1
            continue
        message_id = ids[step.key]
        fresh = message_id not in stored
        if fresh:
            marks.append((timezone.now(), when))
            if isinstance(step, Mail):
                _receive(inbox, step, ids, when)
            else:
                _answer(conversation, step, message_id)
            seeded += 1
        if conversation is None:
            conversation = Conversation.objects.get(
                account=account, messages__inbox=inbox, messages__message_id=message_id
            )
    return seeded


def _incoming_id(mail: Mail) -> str:
    return f"{mail.key}@mail.{mail.sender[1].rpartition('@')[2]}"


def _reply_id(account: Account, reply: Reply) -> str:
    return f"{reply.key}@{account.subdomain}.{settings.SENDING_DOMAIN_PAID}"


def raw_mail(mail: Mail, *, message_id: str, to: str, when: datetime, thread_ids: list[str]) -> bytes:
    """The mail as a client sends it: RFC 5322 headers, text (and HTML) body, attachments."""
    message = EmailMessage(policy=SMTP)
    message["From"] = formataddr(mail.sender)
    message["To"] = to
    if mail.cc:
        message["Cc"] = ", ".join(formataddr(address) for address in mail.cc)
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(when)
    message["Message-ID"] = f"<{message_id}>"
    if thread_ids:
        message["In-Reply-To"] = f"<{thread_ids[-1]}>"
        message["References"] = " ".join(f"<{i}>" for i in thread_ids)
    for name, value in mail.headers:
        message[name] = value
    # Gmail's style of date in a forwarded block: "Mon, 30 Nov 2026 at 16:02".
    original = when - timedelta(days=1, hours=2)
    message.set_content(mail.text.replace("{original_date}", original.strftime("%a, %-d %b %Y at %H:%M")))
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
    for filename, content_type, payload in mail.attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def _receive(inbox: Inbox, mail: Mail, ids: dict[str, str], when: datetime) -> None:
    address = FallbackAddress.objects.get(account_id=inbox.account_id, channel__inbox=inbox).address
    thread_ids = []
    if mail.answers:
        # References: the thread so far, oldest first, up to the message answered.
        keys = list(ids)
        thread_ids = [ids[key] for key in keys[: keys.index(mail.answers) + 1]]
        if mail.to_reply_address:
            answered = Message.objects.get(
                account_id=inbox.account_id, inbox=inbox, message_id=ids[mail.answers]
            )
            address = answered.reply_to or address
    raw = raw_mail(mail, message_id=ids[mail.key], to=address, when=when, thread_ids=thread_ids)
    domain = mail.sender[1].rpartition("@")[2]
    rows = spool.spool_inbound(
        raw=raw, mail_from=mail.sender[1], rcpt_tos=[address], peer_ip=PEER_IP, helo=f"mail.{domain}"
    )
    for row in rows:
        if pipeline.process_inbound_message(row.pk) != InboundMessage.State.PROCESSED:
            row.refresh_from_db()
            raise SeedingFailed(f"The demo mail {mail.key} was not processed: {row.error}")


def _member(account: Account, email: str) -> Membership:
    return Membership.objects.select_related("user").get(account=account, user__email=email)


def _agent(conversation: Conversation, email: str) -> Membership:
    if email:
        return _member(conversation.account, email)
    if conversation.assignee_id:
        return Membership.objects.select_related("user").get(
            account_id=conversation.account_id, pk=conversation.assignee_id
        )
    return _member(conversation.account, DEFAULT_AGENT)


def _answer(conversation: Conversation, reply: Reply, message_id: str) -> None:
    # Stored by the composer's own code, then marked sent: the demo never mails its made-up customers.
    conversation = Conversation.objects.get(account_id=conversation.account_id, pk=conversation.pk)
    with transaction.atomic():
        message = send_reply(conversation, body=reply.body, by=_agent(conversation, reply.by))
        Message.objects.filter(account_id=message.account_id, pk=message.pk).update(
            message_id=message_id,
            delivery_state=Message.DeliveryState.SENT,
            delivery_attempts=1,
            delivered_at=timezone.now(),
        )


def _act(account: Account, conversation: Conversation, act: Act) -> None:
    conversation = Conversation.objects.select_related("inbox").get(account=account, pk=conversation.pk)
    by = _agent(conversation, act.by)
    if act.action == "assign":
        assign_conversation(conversation, _member(account, act.value), by=by)
    elif act.action == "close":
        set_conversation_status(conversation, Conversation.Status.CLOSED, by=by)
    elif act.action == "stage":
        ticket = Ticket.objects.get(account=account, conversation=conversation)
        move_ticket(ticket, Stage.objects.get(pipeline_id=ticket.pipeline_id, name=act.value), by=by)
    else:
        raise ValueError(f"unknown demo action {act.action!r}")


def _retime(account: Account, marks: list[tuple[datetime, datetime]]) -> None:
    """Give every row of the account a step stamped with the clock that step's time, in one transaction.

    `marks`: when each step started by the clock, and the moment of the week it stands for, in order.
    A stamp belongs to the last step that started at or before it. Every date and time column of every
    tenant model is looked at, so what a step records (messages, tickets, decisions, the activity and
    audit trails, read states) reads as that day, whichever app records it.
    """
    if not marks:
        return
    with transaction.atomic():
        for model, names in _stamped_columns():
            for name in names:
                steps = [When(**{f"{name}__gte": start}, then=Value(when)) for start, when in reversed(marks)]
                moment = Case(*steps, default=F(name), output_field=DateTimeField())
                stamped = model._base_manager.filter(account=account, **{f"{name}__gte": marks[0][0]})
                stamped.update(**{name: moment})


def _stamped_columns():
    for label in TENANT_APPS:
        for model in apps.get_app_config(label).get_models():
            if not any(field.name == "account" and field.is_relation for field in model._meta.fields):
                continue
            names = [field.name for field in model._meta.concrete_fields if isinstance(field, DateTimeField)]
            if names:
                yield model, names
