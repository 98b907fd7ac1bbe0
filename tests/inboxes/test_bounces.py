"""A bounce of an agent's reply marks the reply bounced on its thread and opens nothing (H3, RFC 3464).

Everything over real SMTP: Carol's mail reaches the ingress, the agent's reply
leaves through a capture smarthost, and the bounce comes back to the ingress
from the null sender (`MAIL FROM:<>`) in the shape its software writes
(tests/fixtures/mail, reconstructed). It is addressed to the fallback address,
as a bounce arrives when the reply's from address is a mailbox that forwards
there (C4). Processing runs before the ingress's 250, as without REDIS_URL.
"""

import smtplib

import pytest
from django.urls import reverse
from django.utils.html import escape
from django_scopes import scope, scopes_disabled

from inboxes.bounces import DELAYED_NOTE
from inboxes.models import Conversation, Message
from inboxes.replies import send_reply
from inboxhub.celery import app as celery_app
from inboxhub.models import OutboundEmail
from routing.models import AssignmentDecision, AssignmentRule
from tests.channels_conn.conftest import start_smtp  # noqa: F401 - the fixture
from tests.factories import MembershipFactory
from tests.inboxes.helpers import address_of, default_inbox, raw_mail
from tests.machine_mail import BOUNCES, machine_mail

CONTACT = "carol@customer.example"


@pytest.fixture
def ingress(start_smtp, monkeypatch):  # noqa: F811 - the imported fixture
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    return start_smtp()


@pytest.fixture
def routing_on(admin, inbox):
    """Automatic assignment to Ada, a paid agent who is available: a person's new mail goes to her."""
    ada = MembershipFactory(account=admin.account, user__full_name="Ada Lovelace", username="ada")
    with scopes_disabled():
        AssignmentRule.objects.create(account=admin.account, inbox=inbox, enabled=True).members.add(ada)
    return ada


def send(server, raw: bytes, to: str, *, mail_from: str) -> int:
    with smtplib.SMTP(server.hostname, server.port, local_hostname="mx.example", timeout=15) as client:
        client.ehlo()
        client.mail(mail_from)
        client.rcpt(to)
        code, _ = client.data(raw)
        return code


def conversations_of(account) -> list[Conversation]:
    with scopes_disabled():
        return list(Conversation.objects.filter(account=account).order_by("pk"))


def messages_of(account) -> list[Message]:
    with scopes_disabled():
        return list(Message.objects.filter(account=account).order_by("pk"))


def reload(message: Message) -> Message:
    with scopes_disabled():
        return Message.objects.get(pk=message.pk)


def reply_in(inbox, ingress, mail_server, by) -> tuple[Message, dict]:
    """Carol writes over SMTP; `by` answers; returns the stored reply and what the smarthost captured."""
    to = address_of(inbox)
    assert send(ingress, raw_mail(to=to, message_id="<raw1@customer.example>"), to, mail_from=CONTACT) == 250
    [conversation] = conversations_of(inbox.account)
    with scope(account=inbox.account):
        reply = send_reply(conversation, body="Your parcel left our warehouse this morning.", by=by)
    # The reply, to Carol (an assignee who never signed in is also told of the assignment: issue 17).
    [captured] = [message for rcpt_tos, message in mail_server.messages if rcpt_tos == [CONTACT]]
    return reload(reply), captured


def bounce_of(name: str, captured, inbox) -> bytes:
    return machine_mail(
        name,
        to=address_of(inbox),
        contact=CONTACT,
        reply_id=captured["Message-ID"].strip("<>"),
        reply_to=captured["Reply-To"],
    )


@pytest.mark.parametrize("name", BOUNCES)
def test_a_bounce_of_a_reply_marks_it_bounced_and_opens_no_conversation(
    name, ingress, mail_server, admin, inbox
):
    reply, captured = reply_in(inbox, ingress, mail_server, admin)
    assert reply.delivery_state == Message.DeliveryState.SENT
    before = messages_of(admin.account)

    assert send(ingress, bounce_of(name, captured, inbox), address_of(inbox), mail_from="") == 250

    reply = reload(reply)
    assert reply.delivery_state == Message.DeliveryState.BOUNCED
    assert reply.delivery_error.startswith(("550 5.", "5.1.1"))
    assert len(conversations_of(admin.account)) == 1
    assert messages_of(admin.account) == before
    assert len(mail_server.messages) == 1  # nothing answered the bounce


def test_a_bounce_to_the_replys_envelope_sender_marks_it_bounced(ingress, mail_server, admin, inbox):
    """A receiving server returns the mail to its envelope sender: the reply's own reply address."""
    reply, captured = reply_in(inbox, ingress, mail_server, admin)
    [envelope_sender] = mail_server.envelope_senders

    assert send(ingress, bounce_of("postfix_bounce", captured, inbox), envelope_sender, mail_from="") == 250

    assert reload(reply).delivery_state == Message.DeliveryState.BOUNCED
    assert len(conversations_of(admin.account)) == 1


def test_the_thread_shows_the_bounce_with_the_servers_reason(client, ingress, mail_server, admin, inbox):
    reply, captured = reply_in(inbox, ingress, mail_server, admin)
    send(ingress, bounce_of("postfix_bounce", captured, inbox), address_of(inbox), mail_from="")

    client.force_login(admin.user)
    page = client.get(reverse("inboxes:thread", args=["alpha", reply.conversation_id])).text
    reason = (
        "550 5.1.1 <carol@customer.example>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    assert '<span class="badge badge-danger">Bounced</span>' in page
    assert f"returned this reply as undeliverable: {escape(reason)}" in page


def test_a_bounce_from_an_empty_address_still_marks_the_reply(ingress, mail_server, admin, inbox):
    """amavis and others write `From: MAILER DAEMON <>`: the report, not the sender, names the reply."""
    reply, captured = reply_in(inbox, ingress, mail_server, admin)
    raw = bounce_of("exim_bounce", captured, inbox).replace(
        b"From: Mail Delivery System <Mailer-Daemon@mail.customer.example>", b"From: MAILER DAEMON <>"
    )
    assert send(ingress, raw, address_of(inbox), mail_from="") == 250
    assert reload(reply).delivery_state == Message.DeliveryState.BOUNCED


def test_a_delay_warning_leaves_the_reply_sent_with_a_note(ingress, mail_server, admin, inbox):
    reply, captured = reply_in(inbox, ingress, mail_server, admin)

    send(ingress, bounce_of("postfix_delayed", captured, inbox), address_of(inbox), mail_from="")

    reply = reload(reply)
    assert reply.delivery_state == Message.DeliveryState.SENT
    reason = (
        "4.4.1 connect to mailstore1.customer.example[10.0.4.21]:25: Connection timed out "
        "(carol@customer.example)"
    )
    assert reply.delivery_error == DELAYED_NOTE.format(reason=reason)
    assert len(conversations_of(admin.account)) == 1


def test_the_same_bounce_twice_keeps_one_outcome_and_opens_nothing(ingress, mail_server, admin, inbox):
    reply, captured = reply_in(inbox, ingress, mail_server, admin)
    before = messages_of(admin.account)
    raw = bounce_of("exim_bounce", captured, inbox)
    send(ingress, raw, address_of(inbox), mail_from="")
    first = reload(reply).delivery_error

    send(ingress, raw, address_of(inbox), mail_from="")

    reply = reload(reply)
    assert (reply.delivery_state, reply.delivery_error) == (Message.DeliveryState.BOUNCED, first)
    assert messages_of(admin.account) == before


def test_a_bounce_naming_another_accounts_reply_changes_nothing_there(
    ingress, mail_server, routing_on, admin, outsider, inbox
):
    """RELIABILITY advisory 13: the Message-ID is looked up in the receiving inbox only."""
    reply, captured = reply_in(default_inbox(outsider.account), ingress, mail_server, outsider)

    raw = bounce_of("postfix_bounce", captured, inbox)  # the other reply's id, sent to alpha's inbox
    assert send(ingress, raw, address_of(inbox), mail_from="") == 250

    assert reload(reply).delivery_state == Message.DeliveryState.SENT
    [conversation] = conversations_of(admin.account)
    assert conversation.automated_reason == "a delivery status notification (bounce)"
    assert conversation.assignee is None


def test_a_bounce_of_mail_that_is_not_ours_stays_a_machines_message(
    ingress, mail_server, routing_on, admin, inbox
):
    raw = machine_mail("gmail_dsn", to=address_of(inbox), reply_id="someone-else@elsewhere.example")
    assert send(ingress, raw, address_of(inbox), mail_from="") == 250

    [conversation] = conversations_of(admin.account)
    [message] = messages_of(admin.account)
    assert message.automated_reason == "a delivery status notification (bounce)"
    assert conversation.assignee is None
    with scopes_disabled():
        decision = AssignmentDecision.objects.get(conversation=conversation)
        assert not OutboundEmail.objects.exists()
    assert decision.summary.startswith("Left unassigned: its first message is a delivery status")
    assert mail_server.messages == []


def test_an_agents_reply_carries_no_auto_submitted(ingress, mail_server, admin, inbox):
    """RFC 3834 §5: a person's reply is not automatic, so robots may answer it (an out-of-office)."""
    _, captured = reply_in(inbox, ingress, mail_server, admin)
    assert captured["Auto-Submitted"] is None
    assert captured["Message-ID"] and captured["In-Reply-To"] == "<raw1@customer.example>"


@pytest.mark.parametrize("name", ["exchange_oof", "gmail_vacation"])
def test_an_out_of_office_to_a_reply_joins_its_thread_and_starts_nothing(
    name, ingress, mail_server, routing_on, admin, inbox
):
    reply, captured = reply_in(inbox, ingress, mail_server, admin)
    with scopes_disabled():
        decisions = AssignmentDecision.objects.count()
    # RFC 3834 §4: an auto-reply goes to where the reply asked answers to go, its Reply-To token address.
    raw = bounce_of(name, captured, inbox)
    assert send(ingress, raw, captured["Reply-To"], mail_from="") == 250

    [conversation] = conversations_of(admin.account)
    automatic = messages_of(admin.account)[-1]
    assert automatic.conversation_id == conversation.pk
    assert automatic.automated_reason == "marked Auto-Submitted: auto-replied"
    assert reload(reply).delivery_state == Message.DeliveryState.SENT
    assert conversation.assignee == routing_on  # as Carol's first mail left it
    with scopes_disabled():
        assert AssignmentDecision.objects.count() == decisions
        # Only the assignee's note about Carol's first mail (issue 17): nothing the out-of-office started.
        notices = OutboundEmail.objects.filter(kind=OutboundEmail.Kind.ASSIGNMENT_NOTIFICATION).count()
        assert OutboundEmail.objects.count() == notices <= 1
    assert [rcpt_tos for rcpt_tos, _ in mail_server.messages if rcpt_tos == [CONTACT]] == [[CONTACT]]
