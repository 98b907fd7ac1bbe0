"""Internal notes (H4): written beside the composer, shown in the thread marked as notes, never emailed."""

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from inboxes.models import Contact, Conversation, Message
from inboxes.notes import EMPTY_NOTE
from inboxes.replies import sweep_replies
from inboxhub.celery import app as celery_app
from tests.inboxes.helpers import default_inbox
from tests.smarthost import smarthost

pytestmark = pytest.mark.django_db

XSS = '<script>alert("note")</script><img src=x onerror=alert(1)>'


@pytest.fixture(autouse=True)
def eager(monkeypatch):
    """Anything queued is delivered in the test's process, as without REDIS_URL."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)


@pytest.fixture
def conversation(admin) -> Conversation:
    with scopes_disabled():
        contact = Contact.objects.create(account=admin.account, email="carol@customer.example", name="Carol")
        conversation = Conversation.objects.create(
            account=admin.account,
            inbox=default_inbox(admin.account),
            contact=contact,
            subject="Broken widget",
        )
        Message.objects.create(
            account=admin.account,
            conversation=conversation,
            inbox=conversation.inbox,
            message_id="q1@customer.example",
            from_email="carol@customer.example",
            text="My widget is broken.",
            created_at=conversation.created_at,
        )
    return conversation


def note_url(conversation) -> str:
    return reverse("conversations:note", args=[conversation.account.subdomain, conversation.pk])


def thread_url(conversation) -> str:
    return reverse("inboxes:thread", args=[conversation.account.subdomain, conversation.pk])


def notes_of(conversation) -> list[Message]:
    with scopes_disabled():
        return list(Message.objects.filter(conversation=conversation, direction="note").order_by("pk"))


def test_a_note_is_stored_and_shown_in_the_thread_marked_as_not_sent(client, agent, conversation):
    client.force_login(agent.user)

    r = client.post(note_url(conversation), {"body": "Called her: a new widget ships Monday.\nNo refund."})

    [note] = notes_of(conversation)
    assert r.status_code == 302 and r.url == f"{thread_url(conversation)}#message-{note.pk}"
    assert (note.text, note.sent_by, note.delivery_state) == (
        "Called her: a new widget ships Monday.\nNo refund.",
        agent,
        "",
    )
    page = client.get(thread_url(conversation)).text
    assert f'<article class="card message note" id="message-{note.pk}"' in page
    assert "Internal note — not sent" in page
    assert 'role="img" aria-label="Internal note"' in page
    assert "<p>Called her: a new widget ships Monday.<br>No refund.</p>" in page
    # In order with the mail: after Carol's message.
    assert page.index("My widget is broken.") < page.index("Called her: a new widget ships Monday.")


def test_an_htmx_note_comes_back_as_a_fresh_form_and_the_note_appended_to_the_thread(
    client, agent, conversation
):
    client.force_login(agent.user)

    r = client.post(note_url(conversation), {"body": "Checked stock."}, headers={"HX-Request": "true"})

    [note] = notes_of(conversation)
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<section class="card note-composer" id="note-composer"')
    assert '<textarea id="note-body" name="body" rows="3" required></textarea>' in r.text
    assert (
        f'<ol hx-swap-oob="beforeend:ol.thread"><li><article class="card message note" id="message-{note.pk}"'
        in (r.text)
    )


def test_an_empty_note_comes_back_with_the_reason_and_nothing_is_stored(client, agent, conversation):
    client.force_login(agent.user)

    r = client.post(note_url(conversation), {"body": "  \n"}, headers={"HX-Request": "true"})

    assert r.status_code == 200 and EMPTY_NOTE in r.text and 'aria-invalid="true"' in r.text
    assert notes_of(conversation) == []


def test_a_note_is_escaped_in_the_thread_and_in_the_htmx_answer(client, agent, conversation):
    client.force_login(agent.user)

    r = client.post(note_url(conversation), {"body": XSS}, headers={"HX-Request": "true"})
    page = client.get(thread_url(conversation)).text

    for text in (r.text, page):
        assert "<script>alert" not in text and "<img src=x" not in text
        assert (
            "&lt;script&gt;alert(&quot;note&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in text
        )


def test_a_note_is_never_emailed_nor_quoted_in_a_reply(
    client, agent, conversation, settings, django_capture_on_commit_callbacks
):
    client.force_login(agent.user)
    with smarthost(settings) as mail_server:
        with django_capture_on_commit_callbacks(execute=True):
            client.post(note_url(conversation), {"body": "Internal: she is a VIP, refund anyway."})
        assert sweep_replies() == 0
        assert mail_server.attempts == 0 and mail_server.messages == []

        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                reverse("inboxes:reply", args=[conversation.account.subdomain, conversation.pk]),
                {"body": "A new widget ships Monday."},
            )

    [(_, mail)] = mail_server.messages
    assert "VIP" not in mail.as_string()
    assert mail.get_content().strip() == "A new widget ships Monday."


def test_a_note_does_not_move_the_conversation_in_the_list(client, agent, conversation):
    client.force_login(agent.user)
    before = conversation.last_message_at

    client.post(note_url(conversation), {"body": "Waiting for the warehouse."})

    with scopes_disabled():
        conversation.refresh_from_db()
    assert conversation.last_message_at == before
    listing = client.get(
        reverse("inboxes:inbox", args=[conversation.account.subdomain, conversation.inbox_id])
    )
    assert "My widget is broken." in listing.text and "Waiting for the warehouse." not in listing.text


def test_a_note_is_not_on_the_contacts_timeline(client, agent, conversation):
    client.force_login(agent.user)
    client.post(note_url(conversation), {"body": "She prefers phone calls."})

    page = client.get(
        reverse("contacts:detail", args=[conversation.account.subdomain, conversation.contact_id])
    )

    assert "My widget is broken." in page.text and "She prefers phone calls." not in page.text
