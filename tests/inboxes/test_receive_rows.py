"""The rows a received message writes, by the statements written by hand for speed (issue 18): the
same rows the ORM wrote, and a new contact never made for an address someone has (H6)."""

import pytest
from django.db import connection
from django_scopes import scope, scopes_disabled

from inboxes.contact_merge import create_contact, merge_contacts
from inboxes.models import Contact, Conversation, Message
from inboxes.receiving import find_or_create_contact
from inboxhub.lib.mail.parsing import Address
from tests.inboxes.helpers import parsed, receive

pytestmark = pytest.mark.django_db

WORK = Address(name="Carol Work", email="carol.work@bigcorp.example")


def test_a_contact_for_an_address_kept_from_a_merge_is_not_created(admin, inbox):
    carol = receive(inbox, parsed(subject="Order from home")).conversation.contact
    work = receive(inbox, parsed(sender=WORK, subject="Invoice")).conversation.contact
    with scope(account=admin.account):
        merge_contacts(carol, work, by=admin)

        assert create_contact(admin.account, "Carol.Work@bigcorp.example", name="Carol") is None
        assert find_or_create_contact(admin.account, email="carol.work@bigcorp.example").pk == carol.pk
    with scopes_disabled():
        assert not Contact.objects.filter(email__iexact=WORK.email).exists()


def test_a_contact_another_worker_created_is_found_not_created_twice(admin, inbox):
    carol = receive(inbox, parsed(subject="Order from home")).conversation.contact
    with scope(account=admin.account):
        assert create_contact(admin.account, carol.email.upper(), name="") is None
        found = find_or_create_contact(admin.account, email=carol.email.upper(), name="Carol Again")
    assert found.pk == carol.pk


def test_a_new_contact_is_stored_with_its_name_and_no_owner(admin, inbox):
    stranger = Address(name="Dan  Stranger", email="Dan@Elsewhere.example")
    message = receive(inbox, parsed(sender=stranger, subject="Hello"))
    with scopes_disabled():
        contact = Contact.objects.get(pk=message.conversation.contact_id)
    assert (contact.account_id, contact.email, contact.name, contact.owner_id) == (
        admin.account.pk,
        "dan@elsewhere.example",
        "Dan Stranger",
        None,
    )
    assert contact.created_at is not None


def test_the_stored_message_reads_back_as_it_was_received(admin, inbox):
    kept = receive(
        inbox,
        parsed(
            subject="Order 4711",
            text="Where is my order?",
            html="<p>Where is <b>my</b> order?<script>x()</script></p>",
            cc=[Address(name="Eve", email="eve@customer.example")],
        ),
    )
    with scopes_disabled():
        stored = Message.objects.get(pk=kept.pk)
        conversation = Conversation.objects.get(pk=stored.conversation_id)
    for name in [f.attname for f in Message._meta.concrete_fields]:
        assert getattr(stored, name) == getattr(kept, name), name
    assert stored.cc == [{"name": "Eve", "email": "eve@customer.example"}]
    assert "<script>" not in stored.html and "<b>my</b>" in stored.html
    assert (conversation.subject, conversation.status) == ("Order 4711", "open")
    assert conversation.assignee_id is None
    assert conversation.created_at == conversation.last_message_at == stored.created_at


def test_json_columns_hold_json_not_text(admin, inbox):
    message = receive(inbox, parsed(cc=[Address(name="Eve", email="eve@customer.example")]))
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT jsonb_typeof(cc), jsonb_typeof("to") FROM {Message._meta.db_table} WHERE id = %s',  # noqa: S608
            [message.pk],
        )
        assert cursor.fetchone() == ("array", "array")


def test_a_reply_moves_its_conversation_to_the_replys_arrival(admin, inbox):
    first = receive(inbox, parsed(subject="Order 4711", message_id="first@customer.example"))
    reply = receive(inbox, parsed(subject="Re: Order 4711", in_reply_to=["first@customer.example"]))
    assert reply.conversation_id == first.conversation_id
    with scopes_disabled():
        conversation = Conversation.objects.get(pk=first.conversation_id)
    assert conversation.last_message_at == reply.created_at > first.created_at
