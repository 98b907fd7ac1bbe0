"""Mail a machine sent — bounces, auto-replies, list mail — starts nothing automatic (RFC 3834, RFC 3464)."""

from email import policy
from email.parser import BytesParser

import pytest
from django_scopes import scopes_disabled

from inboxes.models import Conversation
from inboxhub.lib.mail.automated import automated_reason
from inboxhub.lib.mail.parsing import parse_message
from ingest.pipeline import process_inbound_message
from routing.models import AssignmentDecision, AssignmentRule
from tests.factories import MembershipFactory
from tests.inboxes.helpers import address_of, spool

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
