"""The demo's week of mail: received through the pipeline, threaded, spread over seven days.

The week is seeded once for the module (each mail commits to the spool on its own, so not inside
a test's transaction) and every test only reads it; the database is flushed afterwards.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from inboxes.models import Attachment, Contact, Conversation, Message
from inboxhub.demo_mail.week import WEEK, Mail, Reply
from tickets.models import Ticket

# One worker runs them all, so the week is seeded once.
pytestmark = pytest.mark.xdist_group("demo_week")

MAILS = [step for thread in WEEK for step in thread.steps if isinstance(step, Mail)]
REPLIES = [step for thread in WEEK for step in thread.steps if isinstance(step, Reply)]


@pytest.fixture(scope="module")
def week(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        call_command("demo", stdout=StringIO())
        yield
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def acme(week, db):
    with scopes_disabled():
        yield


def conversation(subject: str) -> Conversation:
    return Conversation.objects.select_related("contact", "assignee__user", "inbox").get(
        account__subdomain="acme", subject=subject
    )


def test_a_first_login_opens_an_inbox_with_the_weeks_conversations(acme):
    client = Client()
    client.post("/login/", {"username": "ada@acme.example", "password": "inboxhub-demo"})

    page = client.get("/a/acme/", follow=True)

    assert page.status_code == 200
    assert "Scanner firmware 4.2 keeps dropping Wi-Fi" in page.text
    assert "Importing four years of history from our old helpdesk" in page.text


def test_every_demo_mail_came_through_the_spool_and_the_pipeline(acme):
    rows = InboundMessage.objects.filter(account__subdomain="acme")

    assert sorted(rows.values_list("state", flat=True)) == ["processed"] * len(MAILS)
    incoming = Message.objects.filter(account__subdomain="acme", direction="incoming")
    assert incoming.count() == len(MAILS)
    assert not incoming.filter(inbound=None).exists()


def test_the_conversations_spread_over_the_last_seven_days(acme):
    now = timezone.now()
    moments = list(Conversation.objects.values_list("last_message_at", flat=True))

    assert all(now - timedelta(days=7) < moment < now for moment in moments)
    assert len({moment.date() for moment in moments}) >= 5
    # An incoming message is stored at the time its Date header says (a forward's is the original's).
    for message in Message.objects.filter(direction="incoming", attributed_by="from"):
        assert abs(message.created_at - message.sent_at) < timedelta(seconds=1), message.subject


def test_a_reply_chain_alternates_customer_and_agent_threaded_by_its_headers(acme):
    order = conversation("Order A-20931 still not shipped")
    messages = list(order.messages.order_by("created_at"))

    assert [m.direction for m in messages] == ["incoming", "outgoing"] * 2 + ["incoming"]
    assert [m.threaded_by for m in messages if m.direction == "incoming"][1:] == ["reply_token"] * 2
    answer = bytes(InboundMessage.objects.get(pk=messages[2].inbound_id).raw).decode()
    assert f"In-Reply-To: <{messages[1].message_id}>" in answer
    assert {m.delivery_state for m in messages if m.direction == "outgoing"} == {"sent"}


def test_the_long_thread_has_sixty_messages_each_answer_threaded_by_in_reply_to(acme):
    thread = conversation("Importing four years of history from our old helpdesk")
    messages = list(thread.messages.order_by("created_at"))

    assert len(messages) == 60
    assert {m.threaded_by for m in messages[2::2]} == {"in_reply_to"}
    assert [m.direction for m in messages[:4]] == ["incoming", "outgoing", "incoming", "outgoing"]


def test_a_members_forward_is_logged_to_the_original_sender(acme):
    quote = conversation("Quote for 12 handheld scanners")
    first = quote.messages.order_by("created_at").first()

    assert quote.contact.email == "marta.oliveira@lumen-dental.example"
    assert first.attributed_by == "forwarded_block"
    assert quote.assignee.user.email == "ben@acme.example"


def test_the_inboxes_hold_unassigned_assigned_closed_and_ticketed_conversations(acme):
    assert conversation("Adding 15 seats for our Leeds depot").assignee is None
    assert conversation("Change the billing address for our account").assignee is not None
    assert conversation("Demo call on Thursday at 15:00?").status == "closed"
    reset = conversation("Password reset link never arrives")
    assert reset.status == "closed"
    assert Ticket.objects.get(conversation=reset).stage.name == "Closed"
    order = Ticket.objects.get(conversation=conversation("Order A-20931 still not shipped"))
    assert order.stage.name == "Waiting on contact"


def test_machines_mail_stays_unassigned_and_the_newsletter_keeps_its_html(acme):
    ooo = conversation("Automatic reply: Your scanner service plan renews on 1 January")
    newsletter = conversation("Fieldnote Weekly #48: peak season checklists that actually get used")

    assert ooo.automated_reason and ooo.assignee is None
    assert newsletter.automated_reason and newsletter.assignee is None
    html = newsletter.messages.get().html
    assert "<table" in html and "cdn.fieldnote.example" in html


def test_the_invoice_is_an_attachment_and_priya_has_three_conversations(acme):
    attachment = Attachment.objects.get(account__subdomain="acme")
    priya = Contact.objects.get(email="priya.raman@brightlane.example")

    assert (attachment.filename, attachment.content_type) == ("INV-2026-1187.pdf", "application/pdf")
    assert priya.conversations.count() == 3
    assert len(REPLIES) == Message.objects.filter(direction="outgoing").count()
