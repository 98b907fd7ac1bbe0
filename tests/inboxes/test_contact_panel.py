"""The contact beside the thread, and the contact page's conversations and timeline (H6, C8, C9, B6, A2)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from inboxes.models import Contact, Conversation, Inbox, InboxAccess, Message
from inboxes.services import create_inbox
from inboxhub.lib.mail.parsing import Address
from tests.inboxes.helpers import CAROL, forward_of, parsed, receive, verified_as

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def thread_url(conversation) -> str:
    return reverse("inboxes:thread", args=[conversation.account.subdomain, conversation.pk])


def contact_url(contact) -> str:
    return reverse("contacts:detail", args=[contact.account.subdomain, contact.pk])


def panel_of(text: str) -> str:
    return text.split('id="contact-panel"')[1].split('<section class="card ticket-panel"')[0]


@pytest.fixture
def hidden_inbox(admin) -> Inbox:
    """An inbox only the admin is on: agents do not see it."""
    with scopes_disabled():
        inbox = create_inbox(admin.account, name="Legal")
        Inbox.objects.filter(pk=inbox.pk).update(access=Inbox.Access.SPECIFIC)
        InboxAccess.objects.create(account=admin.account, inbox=inbox, member=admin)
        return Inbox.objects.get(pk=inbox.pk)


def conversations_of(contact, inbox, subjects, *, start=None):
    """Conversations of the contact, the first subject the oldest."""
    start = start or timezone.now() - timedelta(days=3)
    with scopes_disabled():
        return [
            Conversation.objects.create(
                account=contact.account,
                inbox=inbox,
                contact=contact,
                subject=subject,
                last_message_at=start + timedelta(hours=n),
            )
            for n, subject in enumerate(subjects)
        ]


def carol_in(inbox) -> Contact:
    return receive(inbox, parsed(subject="The thread being read")).conversation


def test_the_panel_shows_the_contacts_name_address_and_page(client, agent, inbox):
    conversation = carol_in(inbox)
    client.force_login(agent.user)

    panel = panel_of(client.get(thread_url(conversation)).text)

    assert f'<a href="{contact_url(conversation.contact)}">Carol Customer</a>' in panel
    assert '<a href="mailto:carol@customer.example">carol@customer.example</a>' in panel
    assert "No other conversations in the inboxes you can see." in panel


def test_the_panel_lists_the_contacts_other_conversations_newest_first(client, agent, inbox):
    conversation = carol_in(inbox)
    older, newer = conversations_of(conversation.contact, inbox, ["Refund please", "Wrong size"])
    with scopes_disabled():
        Conversation.objects.filter(pk=older.pk).update(status=Conversation.Status.CLOSED)
    client.force_login(agent.user)

    panel = panel_of(client.get(thread_url(conversation)).text)

    assert panel.index("Wrong size") < panel.index("Refund please")
    assert "The thread being read" not in panel
    row = panel.split(f'id="contact-panel-conversation-{older.pk}"')[1].split("</li>")[0]
    assert f'href="{thread_url(older)}"' in row and "Closed" in row and "Inbox" in row
    assert "3\xa0days ago</time>" in row


def test_the_panel_shows_ten_and_sends_to_the_contact_page_for_the_rest(client, agent, inbox):
    conversation = carol_in(inbox)
    conversations_of(conversation.contact, inbox, [f"Order {n:02}" for n in range(12)])
    client.force_login(agent.user)

    panel = panel_of(client.get(thread_url(conversation)).text)

    assert panel.count('id="contact-panel-conversation-') == 10
    assert "Order 11" in panel and "Order 02" in panel and "Order 01" not in panel
    assert f'href="{contact_url(conversation.contact)}#contact-conversations"' in panel
    assert "All conversations on the contact page" in panel


def test_an_agent_never_sees_conversations_of_inboxes_hidden_to_them(
    client, admin, agent, inbox, hidden_inbox
):
    conversation = carol_in(inbox)
    conversations_of(conversation.contact, hidden_inbox, ["Lawsuit draft"])

    client.force_login(agent.user)
    assert "Lawsuit draft" not in client.get(thread_url(conversation)).text
    assert "Lawsuit draft" not in client.get(contact_url(conversation.contact)).text

    client.force_login(admin.user)
    assert "Lawsuit draft" in panel_of(client.get(thread_url(conversation)).text)


def test_another_accounts_contact_of_the_same_address_is_never_shown(client, agent, inbox, other_inbox):
    conversation = carol_in(inbox)
    receive(other_inbox, parsed(subject="Bravo's secret order"))
    client.force_login(agent.user)

    assert "Bravo&#x27;s secret order" not in client.get(thread_url(conversation)).text
    assert "Bravo" not in panel_of(client.get(thread_url(conversation)).text)


def test_an_admin_gets_the_owner_picker_in_the_panel_and_an_agent_only_the_owner(client, admin, agent, inbox):
    conversation = carol_in(inbox)
    with scopes_disabled():
        Contact.objects.filter(pk=conversation.contact_id).update(owner=agent)

    client.force_login(admin.user)
    panel = panel_of(client.get(thread_url(conversation)).text)
    assert "Owner: <strong>Bob Agent</strong>" in panel
    assert f'hx-post="{reverse("contacts:owner", args=["alpha", conversation.contact_id])}"' in panel
    assert 'hx-target="#contact-owner"' in panel and "Save owner" in panel

    client.force_login(agent.user)
    panel = panel_of(client.get(thread_url(conversation)).text)
    assert "Owner: <strong>Bob Agent</strong>" in panel
    assert "Save owner" not in panel


def test_changing_the_owner_from_the_panel_swaps_the_owner_block_and_the_thread_shows_it(
    client, admin, agent, inbox
):
    conversation = carol_in(inbox)
    client.force_login(admin.user)

    r = client.post(
        reverse("contacts:owner", args=["alpha", conversation.contact_id]), {"owner": agent.pk}, headers=HTMX
    )

    assert r.text.lstrip().startswith('<section class="card contact-owner" id="contact-owner"')
    assert "Carol Customer is now owned by Bob Agent." in r.text
    assert "Owner: <strong>Bob Agent</strong>" in panel_of(client.get(thread_url(conversation)).text)


def test_a_name_with_markup_is_escaped_in_the_panel(client, agent, inbox):
    message = receive(
        inbox, parsed(sender=Address(name="<img src=x onerror=alert(1)>", email="x@bad.example"))
    )
    conversations_of(message.conversation.contact, inbox, ["<script>alert(2)</script>"])
    client.force_login(agent.user)

    panel = panel_of(client.get(thread_url(message.conversation)).text)

    assert "<img src=x" not in panel and "&lt;img src=x onerror=alert(1)&gt;" in panel
    assert "<script>alert(2)" not in panel and "&lt;script&gt;alert(2)&lt;/script&gt;" in panel


def test_the_thread_needs_the_same_queries_however_many_other_conversations(
    client, agent, admin, inbox, django_assert_num_queries, django_assert_max_num_queries
):
    conversation = carol_in(inbox)
    conversations_of(conversation.contact, inbox, ["One other"])
    for member in (agent, admin):
        client.force_login(member.user)
        client.get(thread_url(conversation))  # the first visit also writes the session
        with django_assert_max_num_queries(100) as few:
            client.get(thread_url(conversation))
        conversations_of(conversation.contact, inbox, [f"More {n}" for n in range(15)])
        with django_assert_num_queries(len(few.captured_queries)):
            r = client.get(thread_url(conversation))
        assert panel_of(r.text).count('id="contact-panel-conversation-') == 10


# --- the contact page: its conversations and its timeline ---


def test_the_contact_page_lists_the_contacts_conversations(client, agent, inbox):
    conversation = carol_in(inbox)
    conversations_of(conversation.contact, inbox, ["Refund please"])
    client.force_login(agent.user)

    text = client.get(contact_url(conversation.contact)).text
    section = text.split('id="contact-conversations"')[1].split("</section>")[0]

    assert section.index("The thread being read") < section.index("Refund please")
    assert f'href="{thread_url(conversation)}"' in section


def test_the_timeline_shows_mail_replies_and_forwards_but_not_notes(client, agent, inbox):
    first = receive(inbox, parsed(message_id="t1@customer.example", text="My parcel is lost."))
    conversation = first.conversation
    with scopes_disabled():
        Message.objects.create(
            account=inbox.account,
            conversation=conversation,
            inbox=inbox,
            direction=Message.Direction.OUTGOING,
            from_name="Bob Agent at Alpha",
            from_email="bob@alpha.example",
            subject="Re: Where is my order?",
            text="We sent a new one today.",
            sent_by=agent,
            threaded_by=Message.ThreadedBy.NEW_CONVERSATION,
            attributed_by=Message.AttributedBy.FROM,
        )
        Message.objects.create(
            account=inbox.account,
            conversation=conversation,
            inbox=inbox,
            direction=Message.Direction.NOTE,
            text="Internal: she ordered twice",
            threaded_by=Message.ThreadedBy.NEW_CONVERSATION,
            attributed_by=Message.AttributedBy.FROM,
        )
    receive(
        inbox,
        forward_of(
            CAROL,
            by="alice@alpha.example",
            cc=[Address(name="", email="added@alpha.example")],
            original_cc=[Address(name="", email="dave@customer.example")],
        ),
        verdict=verified_as("alpha.example"),
    )
    client.force_login(agent.user)

    timeline = client.get(contact_url(conversation.contact)).text.split('id="timeline"')[1]

    assert "My parcel is lost." in timeline
    assert "Reply from Bob Agent" in timeline and "We sent a new one today." in timeline
    assert "Internal: she ordered twice" not in timeline
    # C8: the member's forward is logged to Carol, saying who forwarded it; C9: the original CC only.
    assert "Broken widget" in timeline and "forwarded by alice@alpha.example" in timeline
    assert "dave@customer.example" in timeline and "added@alpha.example" not in timeline


def test_a_long_timeline_pages_by_keyset_without_repeating_a_message(client, agent, inbox):
    conversation = carol_in(inbox)
    contact = conversation.contact
    with scopes_disabled():
        moment = timezone.now() - timedelta(days=1)
        Message.objects.bulk_create(
            Message(
                account=inbox.account,
                conversation=conversation,
                inbox=inbox,
                subject=f"Update {n:03}",
                text=f"Text {n:03}",
                # Pairs share a time: the id breaks the tie, so none is shown twice or skipped.
                created_at=moment + timedelta(minutes=n // 2),
                threaded_by=Message.ThreadedBy.IN_REPLY_TO,
                attributed_by=Message.AttributedBy.FROM,
            )
            for n in range(120)
        )
    client.force_login(agent.user)

    seen, pages, url = [], [], contact_url(contact)
    while url:
        text = client.get(url).text.split('id="timeline"')[1].split("</section>")[0]
        pages.append(text)
        seen += [part.split('"')[0] for part in text.split('id="timeline-message-')[1:]]
        older = text.split('href="?before=')
        url = contact_url(contact) + "?before=" + older[1].split("#")[0] if len(older) > 1 else None

    assert len(pages) == 3  # 121 messages, 50 a page
    assert len(seen) == len(set(seen)) == 121
    assert pages[0].index("Update 119") < pages[0].index("Update 100")
    assert "The thread being read" in pages[0] and "Update 000" in pages[2]
    assert "Newest messages" in pages[1] and "Newest messages" not in pages[0]
