"""Mail a machine sent — bounces, auto-replies, list mail — starts nothing automatic (RFC 3834, RFC 3464)."""

import smtplib
from email import policy
from email.parser import BytesParser

import pytest
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from inboxes.models import Contact, Conversation, Message
from inboxhub.celery import app as celery_app
from inboxhub.lib.mail.automated import automated_reason
from inboxhub.lib.mail.parsing import parse_message
from inboxhub.models import OutboundEmail
from ingest.pipeline import process_inbound_message
from routing.models import AssignmentDecision, AssignmentRule
from tests.channels_conn.conftest import start_smtp  # noqa: F401 - the fixture
from tests.corpora import CORPORA
from tests.factories import MembershipFactory
from tests.inboxes.helpers import address_of, raw_mail, spool
from tests.machine_mail import machine_mail

POSTFIX_DSN = (
    b"From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)\r\n"
    b"To: support@alpha.inbox.localhost\r\nSubject: Undelivered Mail Returned to Sender\r\n"
    b"Message-ID: <dsn-1@mx.customer.example>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
    b"--b1\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.customer.example.\r\n"
    b"--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n"
    b"Final-Recipient: rfc822; gone@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b1--\r\n"
)
EXCHANGE_OUT_OF_OFFICE = (
    b"From: Dana Doe <dana@customer.example>\r\nTo: support@alpha.inbox.localhost\r\n"
    b"Subject: Automatic reply: Your order\r\nMessage-ID: <oof-1@customer.example>\r\n"
    b"Auto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\n\r\nI am out of the office.\r\n"
)
GMAIL_VACATION = (
    b"From: Eve <eve@gmail.example>\r\nTo: support@alpha.inbox.localhost\r\nSubject: Vacation\r\n"
    b"Message-ID: <vac-1@gmail.example>\r\nPrecedence: bulk\r\n\r\nOn holiday until Monday.\r\n"
)
LIST_MAIL = (
    b"From: News <news@lists.example>\r\nTo: support@alpha.inbox.localhost\r\nSubject: Weekly digest\r\n"
    b"Message-ID: <list-1@lists.example>\r\nList-Id: <weekly.lists.example>\r\n\r\nThis week...\r\n"
)
PERSON = (
    b"From: Carol <carol@customer.example>\r\nTo: support@alpha.inbox.localhost\r\nSubject: Help\r\n"
    b"Message-ID: <person-1@customer.example>\r\nAuto-Submitted: no\r\n\r\nWhere is my order?\r\n"
)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (POSTFIX_DSN, "a delivery status notification (bounce)"),
        (EXCHANGE_OUT_OF_OFFICE, "marked Auto-Submitted: auto-replied"),
        (GMAIL_VACATION, "marked Precedence: bulk"),
        (LIST_MAIL, "mail from a mailing list"),
        (PERSON, ""),
    ],
    ids=["postfix-dsn", "exchange-oof", "vacation", "list", "person"],
)
def test_what_a_machine_sent_is_recognised_and_a_persons_mail_is_not(raw, reason):
    assert parse_message(raw).automated == reason


def test_a_bounce_named_only_by_its_sender_is_recognised():
    headers = BytesParser(policy=policy.default).parsebytes(b"From: postmaster@example.net\r\n\r\nx\r\n")
    assert automated_reason(headers, "postmaster@example.net") == "a bounce from postmaster@example.net"


@pytest.mark.django_db
@pytest.mark.parametrize("raw", [POSTFIX_DSN, EXCHANGE_OUT_OF_OFFICE], ids=["dsn", "out-of-office"])
def test_a_machines_mail_is_never_assigned_and_the_thread_says_why(client, admin, raw):
    ada = MembershipFactory(account=admin.account, user__full_name="Ada Lovelace", username="ada")
    with scopes_disabled():
        inbox = admin.account.inboxes.get(is_default=True)
        AssignmentRule.objects.create(account=admin.account, inbox=inbox, enabled=True).members.add(ada)
    to = address_of(inbox)
    assert process_inbound_message(spool(raw, to).pk) == "processed"

    with scopes_disabled():
        conversation = Conversation.objects.get(inbox=inbox)
        decision = AssignmentDecision.objects.get(conversation=conversation)
    assert conversation.assignee is None
    assert decision.summary.startswith("Left unassigned: its first message is ")
    assert decision.summary.endswith("; a machine's mail starts nothing automatic.")
    client.force_login(admin.user)
    assert "Sent by a machine:" in client.get(f"/a/alpha/inbox/c/{conversation.pk}/").text


@pytest.mark.django_db
def test_a_persons_mail_in_the_same_inbox_is_still_assigned(admin):
    ada = MembershipFactory(account=admin.account, user__full_name="Ada Lovelace", username="ada")
    with scopes_disabled():
        inbox = admin.account.inboxes.get(is_default=True)
        AssignmentRule.objects.create(account=admin.account, inbox=inbox, enabled=True).members.add(ada)
    process_inbound_message(spool(PERSON, address_of(inbox)).pk)
    with scopes_disabled():
        assert Conversation.objects.get(inbox=inbox).assignee == ada


# --- real shapes over the real SMTP ingress (tests/fixtures/mail; the shared corpora where they have one) ---

# (sample, envelope sender): bounces and Exchange's out-of-office come from the null sender, as real ones do.
MACHINE_MAIL = [
    ("postfix_bounce", ""),
    ("postfix_delayed", ""),
    ("exchange_ndr", ""),
    ("gmail_dsn", ""),
    ("exim_bounce", ""),
    ("exim_prose_bounce", ""),
    ("exchange_oof", ""),
    ("gmail_vacation", "dan.customer@gmail.example"),
    ("list_mail", "announce-bounces@lists.vendor.example"),
]
# Real messages of the CPython test suite: DSNs of Sun Internet Mail Server (through a Mailman list)
# and Sendmail (a broken boundary), and a list post marked Precedence: bulk.
CORPUS_MACHINE_MAIL = ["msg_16.txt", "msg_25.txt", "msg_32.txt"]
needs_corpora = pytest.mark.skipif(
    not (CORPORA / "cpython-email").is_dir(), reason="the shared corpora are absent"
)


def corpus_mail(file: str) -> bytes:
    raw = (CORPORA / "cpython-email" / file).read_bytes()
    if raw.startswith(b"From "):  # the mbox separator line is no part of the message
        raw = raw.split(b"\n", 1)[1]
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture
def ingress(start_smtp, monkeypatch):  # noqa: F811 - the imported fixture
    """The real SMTP ingress; tasks run before its 250, as without REDIS_URL."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    return start_smtp()


@pytest.fixture
def routing_on(admin):
    """Automatic assignment to Ada, a paid, available agent: a person's new mail goes to her."""
    ada = MembershipFactory(account=admin.account, user__full_name="Ada Lovelace", username="ada")
    with scopes_disabled():
        inbox = admin.account.inboxes.get(is_default=True)
        AssignmentRule.objects.create(account=admin.account, inbox=inbox, enabled=True).members.add(ada)
    return inbox


def smtp_send(server, raw: bytes, to: str, *, mail_from: str) -> int:
    with smtplib.SMTP(server.hostname, server.port, local_hostname="mx.example", timeout=15) as client:
        client.ehlo()
        client.mail(mail_from)
        client.rcpt(to)
        return client.data(raw)[0]


def assert_left_alone(inbox) -> None:
    """The mail opened a conversation nobody was assigned, and nothing was sent or queued to anyone."""
    with scopes_disabled():
        conversation = Conversation.objects.get(inbox=inbox)
        decision = AssignmentDecision.objects.get(conversation=conversation)
        queued = list(OutboundEmail.objects.values_list("kind", "to"))
        replies = Message.objects.filter(direction=Message.Direction.OUTGOING).count()
    assert conversation.automated_reason
    assert conversation.assignee is None
    assert decision.summary.endswith("; a machine's mail starts nothing automatic.")
    assert (queued, replies) == ([], 0)


@pytest.mark.parametrize(("name", "mail_from"), MACHINE_MAIL, ids=[name for name, _ in MACHINE_MAIL])
def test_machine_mail_over_smtp_is_accepted_and_starts_nothing(name, mail_from, ingress, routing_on):
    to = address_of(routing_on)
    # The reply it cites is none of ours: it opens a conversation, as machine mail about others' mail does.
    raw = machine_mail(name, to=to, reply_id="elsewhere-1@other.example")
    assert smtp_send(ingress, raw, to, mail_from=mail_from) == 250
    assert_left_alone(routing_on)


@needs_corpora
@pytest.mark.parametrize("file", CORPUS_MACHINE_MAIL)
def test_real_machine_mail_over_smtp_starts_nothing(file, ingress, routing_on):
    to = address_of(routing_on)
    assert smtp_send(ingress, corpus_mail(file), to, mail_from="") == 250
    assert_left_alone(routing_on)


@needs_corpora
def test_a_real_bounce_from_an_empty_address_that_is_none_of_ours_is_listed_failed(ingress, routing_on):
    """amavis writes `From: MAILER DAEMON <>`: nobody to log it to, so it waits under Failed messages."""
    to = address_of(routing_on)
    assert smtp_send(ingress, corpus_mail("msg_43.txt"), to, mail_from="") == 250
    with scopes_disabled():
        inbound = InboundMessage.objects.get()
        assert not Conversation.objects.exists()
        assert not OutboundEmail.objects.exists()
    assert inbound.state == InboundMessage.State.FAILED
    assert inbound.error.startswith("The sender could not be read unambiguously from the From header")


def test_a_persons_mail_from_the_null_sender_is_accepted_and_received(ingress, routing_on):
    """RFC 5321 §4.5.5: `MAIL FROM:<>` must be accepted; the message itself decides what it is."""
    to = address_of(routing_on)
    assert smtp_send(ingress, raw_mail(to=to), to, mail_from="") == 250
    with scopes_disabled():
        [message] = Message.objects.filter(inbox=routing_on)
        inbound = message.inbound
    assert inbound.mail_from == ""
    assert message.from_email == "carol@customer.example"


def test_an_away_owner_is_emailed_for_a_persons_mail_but_never_for_a_machines(admin):
    """D6's notification is InboxHub's one automatic mail about incoming mail: a robot never sets it off."""
    owner = MembershipFactory(account=admin.account, user__email="olga@alpha.example", username="olga")
    with scopes_disabled():
        inbox = admin.account.inboxes.get(is_default=True)
        AssignmentRule.objects.create(
            account=admin.account, inbox=inbox, enabled=True, assign_to=AssignmentRule.AssignTo.CONTACT_OWNER
        )
        owner.availability = owner.Availability.AWAY
        owner.save(update_fields=["availability"])
        for email in ("carol@customer.example", "dan.customer@gmail.example"):
            Contact.objects.create(account=admin.account, email=email, owner=owner)
    to = address_of(inbox)

    process_inbound_message(spool(machine_mail("gmail_vacation", to=to), to).pk)
    with scopes_disabled():
        assert not OutboundEmail.objects.exists()

    process_inbound_message(spool(PERSON, to).pk)
    with scopes_disabled():
        [notification] = OutboundEmail.objects.all()
    assert notification.kind == OutboundEmail.Kind.OWNER_NOTIFICATION
    assert notification.to == "olga@alpha.example"
