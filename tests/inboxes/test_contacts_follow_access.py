"""Contacts follow inbox access: an agent never sees a contact known only from inboxes hidden to them (B6)."""

import pytest
from django_scopes import scopes_disabled

from inboxes.models import Contact, Conversation, Inbox, InboxAccess
from inboxes.services import create_inbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def hidden_inbox(admin) -> Inbox:
    """An inbox only the admin is on: agents do not see it at all."""
    with scopes_disabled():
        inbox = create_inbox(admin.account, name="Legal")
        Inbox.objects.filter(pk=inbox.pk).update(access=Inbox.Access.SPECIFIC)
        InboxAccess.objects.create(account=admin.account, inbox=inbox, member=admin)
        return inbox


def contact_in(inbox, email: str) -> Contact:
    with scopes_disabled():
        contact = Contact.objects.create(account=inbox.account, email=email, name=email.split("@")[0])
        Conversation.objects.create(
            account=inbox.account, inbox=inbox, contact=contact, subject=f"From {email}"
        )
        return contact


def test_an_agent_neither_lists_nor_opens_a_contact_of_hidden_inboxes_only(client, agent, hidden_inbox):
    secret = contact_in(hidden_inbox, "whistleblower@customer.example")
    client.force_login(agent.user)
    assert "whistleblower" not in client.get("/a/alpha/contacts/").text
    assert client.get(f"/a/alpha/contacts/{secret.pk}/").status_code == 404


def test_a_contact_also_known_from_a_visible_inbox_is_listed_and_opens(client, admin, agent, hidden_inbox):
    with scopes_disabled():
        inbox = admin.account.inboxes.get(is_default=True)
    both = contact_in(hidden_inbox, "carol@customer.example")
    with scopes_disabled():
        Conversation.objects.create(account=admin.account, inbox=inbox, contact=both, subject="Visible one")
    client.force_login(agent.user)
    assert "carol@customer.example" in client.get("/a/alpha/contacts/").text
    assert client.get(f"/a/alpha/contacts/{both.pk}/").status_code == 200


def test_an_admin_sees_every_contact(client, admin, hidden_inbox):
    secret = contact_in(hidden_inbox, "whistleblower@customer.example")
    client.force_login(admin.user)
    assert "whistleblower" in client.get("/a/alpha/contacts/").text
    assert client.get(f"/a/alpha/contacts/{secret.pk}/").status_code == 200
