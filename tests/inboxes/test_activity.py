"""The conversation's activity (H4): who did what and when, written with each change, newest 50 shown."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from inboxes.activity import record_event
from inboxes.bounces import record_delivery_report
from inboxes.models import Contact, Conversation, ConversationEvent
from inboxhub.lib.mail.dsn import DeliveryReport, RecipientStatus
from routing.models import AssignmentRule
from routing.services import route_waiting
from tests.inboxes.helpers import default_inbox
from tests.inboxes.inbox_settings_helpers import make_member
from tests.smarthost import smarthost
from tickets.models import Pipeline
from tickets.services import move_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(admin) -> Conversation:
    with scopes_disabled():
        contact = Contact.objects.create(account=admin.account, email="carol@customer.example", name="Carol")
        return Conversation.objects.create(
            account=admin.account,
            inbox=default_inbox(admin.account),
            contact=contact,
            subject="Broken widget",
        )


def action_url(conversation, action: str) -> str:
    return reverse(f"conversations:{action}", args=[conversation.account.subdomain, conversation.pk])


def thread_url(conversation) -> str:
    return reverse("inboxes:thread", args=[conversation.account.subdomain, conversation.pk])


def activity_texts(client, conversation) -> list[str]:
    """The Activity list as a reader sees it, newest first, without the times."""
    page = client.get(thread_url(conversation)).text
    section = page.split('<section class="card activity" id="activity"', 1)[1].split("</section>", 1)[0]
    items = re.findall(r"<li[^>]*>(.*?)<time", section, flags=re.S)
    return [" ".join(item.split()) for item in items]


def events_of(conversation) -> list[ConversationEvent]:
    with scopes_disabled():
        return list(ConversationEvent.objects.filter(conversation=conversation).order_by("pk"))


def test_assigning_by_hand_says_who_gave_it_to_whom(client, admin, agent, conversation):
    cleo = make_member(admin.account, "Cleo Colleague")
    client.force_login(agent.user)
    client.post(action_url(conversation, "assign"), {"to": "me"})
    client.force_login(admin.user)
    client.post(action_url(conversation, "assign"), {"assignee": cleo.pk})
    client.post(action_url(conversation, "assign"), {"assignee": ""})

    assert activity_texts(client, conversation) == [
        "Alice Admin unassigned Cleo Colleague",
        "Alice Admin reassigned it from Bob Agent to Cleo Colleague",
        "Bob Agent took it",
    ]
    [took, *_] = events_of(conversation)
    assert (took.actor, took.kind, took.details["assignee_id"]) == (agent, "assigned", agent.pk)


def test_closing_and_reopening_are_listed_with_a_human_time(client, agent, conversation):
    client.force_login(agent.user)
    client.post(action_url(conversation, "close"))
    client.post(action_url(conversation, "reopen"))

    assert activity_texts(client, conversation) == ["Bob Agent reopened it", "Bob Agent closed it"]
    page = client.get(thread_url(conversation)).text
    assert re.search(r'<time class="muted" datetime="[^"]+" title="[^"]+">just now</time>', page)


def test_an_older_entry_says_how_long_ago(client, admin, conversation):
    with scope(account=admin.account):
        record_event(conversation, "closed", by=admin)
    with scopes_disabled():
        ConversationEvent.objects.update(created_at=timezone.now() - timedelta(hours=3, minutes=5))
    client.force_login(admin.user)

    page = client.get(thread_url(conversation)).text

    assert re.search(r'title="[^"]+">3\xa0hours, 5\xa0minutes ago</time></li>', page)


def test_automatic_assignment_says_so_and_why(client, admin, agent, conversation):
    with scopes_disabled():
        rule = AssignmentRule.objects.create(account=admin.account, inbox=conversation.inbox, enabled=True)
        rule.members.add(agent)
    with scope(account=admin.account):
        [decision] = route_waiting(admin.account_id, conversation.inbox_id)
    client.force_login(admin.user)

    [text] = activity_texts(client, conversation)

    assert text == f"Automatic assignment: {decision.summary}"
    assert text.startswith("Automatic assignment: Assigned to Bob Agent")
    [entry] = events_of(conversation)
    assert (entry.actor, entry.details["assignee_id"]) == (None, agent.pk)


def test_a_ticket_made_and_moved_to_closed_is_listed_with_the_close_it_caused(client, admin, conversation):
    client.force_login(admin.user)
    client.post(reverse("tickets:create", args=[conversation.account.subdomain, conversation.pk]))
    with scope(account=admin.account):
        ticket = Conversation.objects.get(pk=conversation.pk).ticket
        closed = Pipeline.objects.get(account=admin.account, is_default=True).stages.get(is_closed=True)
        move_ticket(ticket, closed, by=admin)

    assert activity_texts(client, conversation) == [
        "Alice Admin moved its ticket from New to Closed",
        "Alice Admin closed it",
        "Alice Admin made it a ticket in Support pipeline at New",
    ]


def test_notes_and_replies_are_listed_and_a_failed_delivery_says_why(
    client, agent, conversation, settings, django_capture_on_commit_callbacks
):
    client.force_login(agent.user)
    client.post(action_url(conversation, "note"), {"body": "Refund approved."})
    with smarthost(settings) as mail_server:
        mail_server.rcpt_answer = "550 5.1.1 User unknown"
        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                reverse("inboxes:reply", args=[conversation.account.subdomain, conversation.pk]),
                {"body": "Refund on its way."},
            )

    assert activity_texts(client, conversation) == [
        "A reply could not be delivered: 550 5.1.1 User unknown",
        "Bob Agent sent a reply",
        "Bob Agent added an internal note",
    ]


def test_a_bounce_of_a_reply_is_listed_once_with_the_reason(client, agent, conversation):
    client.force_login(agent.user)
    client.post(
        reverse("inboxes:reply", args=[conversation.account.subdomain, conversation.pk]), {"body": "Hello"}
    )
    with scopes_disabled():
        reply = conversation.messages.get(direction="outgoing")
    gone = RecipientStatus("carol@customer.example", "failed", "5.1.1", "550 5.1.1 User unknown")
    report = DeliveryReport((gone,), (reply.message_id,), standard=True)

    with scope(account=conversation.account):
        for _ in range(2):  # the same bounce twice: one entry
            record_delivery_report(conversation.inbox, report)

    assert activity_texts(client, conversation) == [
        "A reply came back undelivered: 550 5.1.1 User unknown (carol@customer.example)",
        "Bob Agent sent a reply",
    ]


def test_a_refused_change_writes_no_activity(client, admin, agent, conversation):
    with scopes_disabled():
        conversation.inbox.access = "specific"
        conversation.inbox.save(update_fields=["access"])
        conversation.inbox.access_grants.create(account=admin.account, member=admin)
    client.force_login(admin.user)

    response = client.post(action_url(conversation, "assign"), {"assignee": agent.pk}, follow=True)

    assert "Bob Agent is not on the access list of Inbox" in response.text
    assert events_of(conversation) == []


def test_names_in_the_activity_are_escaped(client, admin, conversation):
    mallory = make_member(admin.account, "<img src=x onerror=alert(1)>")
    client.force_login(mallory.user)
    client.post(action_url(conversation, "close"))

    page = client.get(thread_url(conversation)).text

    assert "&lt;img src=x onerror=alert(1)&gt; closed it" in page and "<img src=x" not in page


def test_the_newest_50_are_shown_in_the_same_number_of_queries_as_a_few(client, admin, conversation):
    client.force_login(admin.user)
    with scope(account=admin.account):
        for _ in range(3):
            record_event(conversation, "closed", by=admin)
    with CaptureQueriesContext(connection) as few:
        client.get(thread_url(conversation))
    with scope(account=admin.account):
        for _ in range(57):
            record_event(conversation, "reopened", by=admin)

    with CaptureQueriesContext(connection) as many:
        texts = activity_texts(client, conversation)

    assert len(texts) == 50 and set(texts) == {"Alice Admin reopened it"}
    assert "The newest 50 entries." in client.get(thread_url(conversation)).text
    assert len(many) == len(few)


def test_an_outsider_sees_no_activity_and_cannot_add_to_it(client, outsider, conversation):
    client.force_login(outsider.user)

    assert client.get(thread_url(conversation)).status_code == 404
    assert client.post(action_url(conversation, "close")).status_code == 404
    assert events_of(conversation) == []
