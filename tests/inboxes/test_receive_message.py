"""receive_message: contact, threading, dedupe, attribution (G3, G4, G6, C8, C9, A3, B12)."""

import pytest
from django_scopes import scope

from channels_conn.spool import CannotIngest
from inboxes.models import Attachment, Contact, Conversation, Message
from inboxes.receiving import receive_message
from inboxes.reply_tokens import make_reply_token, reply_address
from inboxhub.lib.mail.parsing import Address
from tests.factories import MembershipFactory
from tests.inboxes.helpers import (
    CAROL,
    address_of,
    attachment,
    fallback_address,
    forward_of,
    parsed,
    receive,
    verified_as,
)

pytestmark = pytest.mark.django_db


def test_a_first_message_starts_a_conversation_with_a_new_contact(inbox):
    message = receive(inbox, parsed(subject="Where is my order?"))
    with scope(account=inbox.account):
        conversation = Conversation.objects.get()
        contact = Contact.objects.get()
    assert message.conversation == conversation
    assert conversation.subject == "Where is my order?"
    assert (contact.email, contact.name) == ("carol@customer.example", "Carol Customer")
    assert conversation.contact == contact and conversation.inbox == inbox
    assert message.threaded_by == Message.ThreadedBy.NEW_CONVERSATION
    assert message.attributed_by == Message.AttributedBy.FROM
    assert "new conversation" in message.threading_note
    assert "carol@customer.example" in message.attribution_note


def test_the_common_provenance_is_not_stored_on_every_row_but_still_shown(inbox):
    common = receive(inbox, parsed(subject="Common"))
    unusual = receive(
        inbox, parsed(subject="Unusual", reply_to=[Address(name="Boss", email="boss@customer.example")])
    )

    with scope(account=inbox.account):
        stored = dict(Message.objects.values_list("subject", "attribution_detail"))
        [kept] = Message.objects.filter(pk=common.pk).values_list("threading_detail", flat=True)
        common.refresh_from_db()
    assert (stored["Common"], kept) == ("", "")  # issue 18: the two common sentences live in the code
    assert common.threading_note.endswith("so it started a new conversation.")
    assert common.attribution_note == "Logged to the sender in the From header, carol@customer.example."
    assert "Reply-To (boss@customer.example) is never used" in stored["Unusual"]
    assert unusual.attribution_note.startswith(
        "Logged to the sender in the From header, carol@customer.example."
    )


def test_the_message_id_is_stored_without_angle_brackets(inbox):
    message = receive(inbox, parsed(message_id="<abc.123@customer.example>"))
    assert message.message_id == "abc.123@customer.example"


def test_a_reply_by_in_reply_to_joins_the_conversation(inbox):
    first = receive(inbox, parsed(message_id="first@customer.example"))
    reply = receive(inbox, parsed(in_reply_to=["first@customer.example"], subject="Re: Where is my order?"))
    assert reply.conversation_id == first.conversation_id
    assert reply.threaded_by == Message.ThreadedBy.IN_REPLY_TO
    assert reply.sender_role == Message.SenderRole.CONTACT


def test_a_reply_by_references_joins_the_conversation(inbox):
    first = receive(inbox, parsed(message_id="first@customer.example"))
    reply = receive(inbox, parsed(references=["unknown@elsewhere.example", "first@customer.example"]))
    assert reply.conversation_id == first.conversation_id
    assert reply.threaded_by == Message.ThreadedBy.REFERENCES


def test_a_reply_to_the_reply_address_threads_by_its_token(inbox):
    first = receive(inbox, parsed())
    recipient = reply_address(first.conversation, address_of(inbox))
    reply = receive(inbox, parsed(subject="Something else entirely"), recipient=recipient)
    assert reply.conversation_id == first.conversation_id
    assert reply.threaded_by == Message.ThreadedBy.REPLY_TOKEN


def test_a_tampered_reply_token_is_ignored_and_starts_a_new_conversation(inbox):
    first = receive(inbox, parsed())
    token = make_reply_token(first.conversation)
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    local, _, domain = address_of(inbox).partition("@")
    reply = receive(inbox, parsed(), recipient=f"{local}+{tampered}@{domain}")
    assert reply.conversation_id != first.conversation_id
    assert reply.threaded_by == Message.ThreadedBy.NEW_CONVERSATION
    assert "does not verify" in reply.threading_note


def test_a_reply_token_of_another_account_never_threads(inbox, other_inbox):
    foreign = receive(other_inbox, parsed())
    local, _, domain = address_of(inbox).partition("@")
    reply = receive(inbox, parsed(), recipient=f"{local}+{make_reply_token(foreign.conversation)}@{domain}")
    assert reply.threaded_by == Message.ThreadedBy.NEW_CONVERSATION
    assert reply.conversation.account_id == inbox.account_id


def test_a_message_id_of_another_account_never_threads(inbox, other_inbox):
    foreign = receive(other_inbox, parsed(message_id="shared@customer.example"))
    reply = receive(inbox, parsed(in_reply_to=["shared@customer.example"]))
    assert reply.threaded_by == Message.ThreadedBy.NEW_CONVERSATION
    assert reply.conversation.account_id == inbox.account_id
    with scope(account=other_inbox.account):
        assert Message.objects.filter(conversation=foreign.conversation).count() == 1


def test_a_reply_from_a_different_sender_joins_flagged_and_the_contact_stays(inbox):
    first = receive(inbox, parsed(message_id="first@customer.example"))
    spoof = receive(
        inbox,
        parsed(
            sender=Address(name="Carol Customer", email="mallory@evil.example"),
            in_reply_to=["first@customer.example"],
        ),
    )
    assert spoof.conversation_id == first.conversation_id
    assert spoof.sender_role == Message.SenderRole.DIFFERENT_SENDER
    assert "not this conversation's contact" in spoof.attribution_note
    with scope(account=inbox.account):
        assert spoof.conversation.contact.email == "carol@customer.example"
        assert not Contact.objects.filter(email="mallory@evil.example").exists()


def test_the_same_message_twice_appears_once(inbox):
    first = receive(inbox, parsed(message_id="dup@customer.example"))
    again = receive(inbox, parsed(message_id="dup@customer.example", text="changed"))
    assert again.pk == first.pk
    with scope(account=inbox.account):
        assert Message.objects.count() == 1


def test_the_same_message_id_in_two_inboxes_is_kept_in_each(admin, inbox):
    from inboxes.services import create_inbox

    with scope(account=admin.account):
        second = create_inbox(admin.account, name="Sales")
    receive(inbox, parsed(message_id="both@customer.example"))
    receive(second, parsed(message_id="both@customer.example"), recipient=address_of(second))
    with scope(account=admin.account):
        assert Message.objects.filter(message_id="both@customer.example").count() == 2


def test_a_message_without_message_id_gets_a_stable_synthetic_one(inbox):
    message = parsed(message_id="")
    first = receive(inbox, message)
    again = receive(inbox, message)
    assert first.message_id.endswith("@no-message-id.invalid")
    assert again.pk == first.pk


def test_the_contact_is_found_regardless_of_case(inbox):
    with scope(account=inbox.account):
        Contact.objects.create(account=inbox.account, email="Dan@Customer.Example")
    message = receive(inbox, parsed(sender=Address(name="Dan", email="dan@customer.example")))
    with scope(account=inbox.account):
        assert Contact.objects.count() == 1
        assert message.conversation.contact.email == "Dan@Customer.Example"


def test_reply_to_is_never_identity(inbox):
    message = receive(inbox, parsed(reply_to=[Address(name="Boss", email="boss@customer.example")]))
    assert message.from_email == "carol@customer.example"
    assert message.conversation.contact.email == "carol@customer.example"
    assert "Reply-To (boss@customer.example) is never used" in message.attribution_note


def test_a_display_name_that_looks_like_an_address_never_becomes_the_contact(inbox):
    message = receive(inbox, parsed(sender=Address(name="bob@customer.com", email="x@evil.example")))
    contact = message.conversation.contact
    assert contact.email == "x@evil.example"
    assert contact.name == "" and message.from_name == ""


def test_a_sender_that_could_not_be_read_fails_loudly_instead_of_guessing(inbox):
    with pytest.raises(CannotIngest, match="could not be read"):
        receive(inbox, parsed(sender=Address(name="", email="")))


def test_a_members_forward_is_logged_to_the_original_sender_when_c8_is_on(admin, inbox):
    message = receive(
        inbox, forward_of(CAROL, by="alice@alpha.example"), verdict=verified_as("alpha.example")
    )
    assert message.conversation.contact.email == "carol@customer.example"
    assert message.attributed_by == Message.AttributedBy.FORWARDED_BLOCK
    assert "Gmail" in message.attribution_note and "Alice Admin" in message.attribution_note
    assert message.subject == "Broken widget"
    assert message.text == "FYI\n\nMy widget is broken."
    assert message.forwarded_original["sender"]["email"] == "carol@customer.example"


def test_a_members_forward_is_logged_to_the_member_when_c8_is_off(admin, inbox):
    address = fallback_address(inbox)
    address.select_original_sender = False
    address.save(update_fields=["select_original_sender"])
    message = receive(
        inbox, forward_of(CAROL, by="ALICE@alpha.example".lower()), verdict=verified_as("alpha.example")
    )
    assert message.conversation.contact.email == "alice@alpha.example"
    assert message.conversation.contact.name == "Alice Admin"
    assert message.attributed_by == Message.AttributedBy.FORWARDER_C8_OFF
    assert "is off" in message.attribution_note


def test_a_forward_by_a_member_of_another_account_is_a_strangers(admin, outsider, inbox):
    message = receive(
        inbox, forward_of(CAROL, by="charlie@bravo.example"), verdict=verified_as("bravo.example")
    )
    assert message.conversation.contact.email == "charlie@bravo.example"
    assert message.attributed_by == Message.AttributedBy.STRANGER_FORWARD


def test_a_strangers_forward_is_logged_to_the_stranger_with_the_original_shown(inbox):
    message = receive(inbox, forward_of(CAROL, by="stranger@elsewhere.example"))
    assert message.conversation.contact.email == "stranger@elsewhere.example"
    assert message.attributed_by == Message.AttributedBy.STRANGER_FORWARD
    assert message.forwarded_original["sender"]["email"] == "carol@customer.example"
    assert message.forwarded_original["forwarded_by_member"] is False
    assert "not a member" in message.attribution_note


def test_only_the_original_ccs_of_a_forward_are_kept(admin, inbox):
    message = receive(
        inbox,
        forward_of(
            CAROL,
            by="alice@alpha.example",
            cc=[Address(name="", email="added-while-forwarding@alpha.example")],
            original_cc=[Address(name="Dave", email="dave@customer.example")],
        ),
        verdict=verified_as("alpha.example"),
    )
    assert message.cc == [{"name": "Dave", "email": "dave@customer.example"}]


def test_an_agents_forward_counts_as_a_members(agent, inbox):
    message = receive(inbox, forward_of(CAROL, by="bob@alpha.example"), verdict=verified_as("alpha.example"))
    assert message.conversation.contact.email == "carol@customer.example"


def test_an_inactive_users_forward_is_a_strangers(admin, inbox):
    member = MembershipFactory(account=admin.account, user__email="gone@alpha.example", user__is_active=False)
    message = receive(inbox, forward_of(CAROL, by=member.user.email), verdict=verified_as("alpha.example"))
    assert message.attributed_by == Message.AttributedBy.STRANGER_FORWARD


def test_html_is_stored_sanitized(inbox):
    message = receive(inbox, parsed(html='<p onclick="x()">Hi<script>alert(1)</script></p>'))
    assert message.html == "<p>Hi</p>"


def test_attachments_are_stored_under_a_generated_key_never_the_filename(inbox):
    message = receive(inbox, parsed(attachments=[attachment(filename="../../etc/passwd", payload=b"root")]))
    with scope(account=inbox.account):
        stored = Attachment.objects.get(message=message)
    assert stored.filename == "passwd"
    assert "passwd" not in stored.file.name and ".." not in stored.file.name
    assert stored.file.name.startswith(f"attachments/{inbox.account_id}/")
    assert stored.size == 4
    assert stored.sha256 == "4813494d137e1631bba301d5acab6e7bb7aa74ce1185d456565ef51d737677b2"
    with stored.file.open("rb") as file:
        assert file.read() == b"root"


def test_attachment_filenames_lose_format_characters(inbox):
    message = receive(inbox, parsed(attachments=[attachment(filename=".htaccess\u200b")]))
    with scope(account=inbox.account):
        assert Attachment.objects.get(message=message).filename == ".htaccess"


def test_an_attachment_over_the_limit_is_skipped_and_the_message_kept(inbox, settings):
    settings.ATTACHMENT_MAX_BYTES = 10
    message = receive(
        inbox,
        parsed(attachments=[attachment("big.bin", b"x" * 11), attachment("small.txt", b"ok", "text/plain")]),
    )
    with scope(account=inbox.account):
        assert [a.filename for a in message.attachments.all()] == ["small.txt"]
    assert message.skipped_attachments[0]["filename"] == "big.bin"
    assert "larger than 10 bytes" in message.skipped_attachments[0]["reason"]


def test_attachments_beyond_the_total_limit_are_skipped(inbox, settings):
    settings.ATTACHMENTS_TOTAL_MAX_BYTES = 5
    message = receive(inbox, parsed(attachments=[attachment("a.txt", b"123"), attachment("b.txt", b"456")]))
    with scope(account=inbox.account):
        assert [a.filename for a in message.attachments.all()] == ["a.txt"]
    assert message.skipped_attachments[0]["filename"] == "b.txt"


def test_only_the_message_that_starts_a_conversation_says_so(inbox):
    with scope(account=inbox.account):
        first = receive_message(
            inbox, parsed(message_id="first@customer.example"), recipient=address_of(inbox)
        )
        again = receive_message(
            inbox, parsed(message_id="first@customer.example"), recipient=address_of(inbox)
        )
        reply = receive_message(
            inbox, parsed(in_reply_to=["first@customer.example"]), recipient=address_of(inbox)
        )
    assert first.started_conversation is True
    assert again.message == first.message and again.started_conversation is False
    assert reply.started_conversation is False


def test_a_reply_moves_the_conversation_to_the_top(inbox):
    first = receive(inbox, parsed(message_id="first@customer.example"))
    before = first.conversation.last_message_at
    reply = receive(inbox, parsed(in_reply_to=["first@customer.example"]))
    with scope(account=inbox.account):
        assert Conversation.objects.get(pk=reply.conversation_id).last_message_at >= before
