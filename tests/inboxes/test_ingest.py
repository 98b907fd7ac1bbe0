"""ingest_inbound: from a spooled raw message to conversations (G3, G4, G6, A2, A3)."""

import ipaddress

import pytest
from django_scopes import scope

from channels_conn.models import Channel
from channels_conn.spool import CannotIngest
from inboxes.models import Message
from inboxes.reply_tokens import reply_address
from inboxhub.lib.mail import parsing
from ingest.pipeline import ChannelTurnedOff, NoRecipient, ingest_inbound
from tests.inboxes.helpers import address_of, messages_in, raw_mail, spool

pytestmark = pytest.mark.django_db


def test_a_spooled_message_becomes_a_conversation(inbox):
    to = address_of(inbox)
    ingest_inbound(spool(raw_mail(to=to), to))
    [message] = messages_in(inbox.account)
    assert message.message_id == "raw1@customer.example"
    assert message.conversation.contact.email == "carol@customer.example"
    assert message.subject == "Where is my order?"
    assert message.text.strip() == "Hello, my order has not arrived."
    assert message.inbound is not None


def test_running_ingest_twice_on_one_row_is_a_no_op(inbox):
    to = address_of(inbox)
    inbound = spool(raw_mail(to=to), to)
    ingest_inbound(inbound)
    ingest_inbound(inbound)
    assert len(messages_in(inbox.account)) == 1


def test_running_ingest_twice_on_a_message_without_message_id_is_a_no_op(inbox):
    to = address_of(inbox)
    inbound = spool(raw_mail(to=to, message_id=None), to)
    ingest_inbound(inbound)
    ingest_inbound(inbound)
    [message] = messages_in(inbox.account)
    assert message.message_id.endswith("@no-message-id.invalid")


def test_the_same_message_delivered_twice_appears_once(inbox):
    to = address_of(inbox)
    ingest_inbound(spool(raw_mail(to=to), to))
    ingest_inbound(spool(raw_mail(to=to), to))
    assert len(messages_in(inbox.account)) == 1


def test_the_recipient_is_matched_without_regard_to_case(inbox):
    to = address_of(inbox).upper()
    ingest_inbound(spool(raw_mail(to=to), to))
    assert len(messages_in(inbox.account)) == 1


def test_a_reply_by_in_reply_to_threads(inbox):
    to = address_of(inbox)
    ingest_inbound(spool(raw_mail(to=to), to))
    reply = raw_mail(
        to=to, message_id="<raw2@customer.example>", headers="In-Reply-To: <raw1@customer.example>"
    )
    ingest_inbound(spool(reply, to))
    first, second = messages_in(inbox.account)
    assert second.conversation_id == first.conversation_id
    assert second.threaded_by == Message.ThreadedBy.IN_REPLY_TO


def test_a_reply_by_references_threads(inbox):
    to = address_of(inbox)
    ingest_inbound(spool(raw_mail(to=to), to))
    reply = raw_mail(
        to=to,
        message_id="<raw2@customer.example>",
        headers="References: <older@customer.example> <raw1@customer.example>",
    )
    ingest_inbound(spool(reply, to))
    first, second = messages_in(inbox.account)
    assert second.conversation_id == first.conversation_id
    assert second.threaded_by == Message.ThreadedBy.REFERENCES


def test_a_reply_to_the_token_address_threads(inbox):
    to = address_of(inbox)
    ingest_inbound(spool(raw_mail(to=to), to))
    [first] = messages_in(inbox.account)
    token_address = reply_address(first.conversation, to)
    ingest_inbound(spool(raw_mail(to=token_address, message_id="<raw2@customer.example>"), token_address))
    second = messages_in(inbox.account)[1]
    assert second.conversation_id == first.conversation_id
    assert second.threaded_by == Message.ThreadedBy.REPLY_TOKEN


def test_a_message_id_of_another_account_never_threads(inbox, other_inbox):
    theirs = address_of(other_inbox)
    ingest_inbound(spool(raw_mail(to=theirs, message_id="<secret@bravo.example>"), theirs))
    ours = address_of(inbox)
    reply = raw_mail(
        to=ours, message_id="<probe@evil.example>", headers="In-Reply-To: <secret@bravo.example>"
    )
    ingest_inbound(spool(reply, ours))
    [message] = messages_in(inbox.account)
    assert message.threaded_by == Message.ThreadedBy.NEW_CONVERSATION
    assert len(messages_in(other_inbox.account)) == 1


def test_one_message_to_two_accounts_lands_in_each(inbox, other_inbox):
    ours, theirs = address_of(inbox), address_of(other_inbox)
    ingest_inbound(spool(raw_mail(to=f"{ours}, {theirs}"), ours, theirs))
    assert len(messages_in(inbox.account)) == 1
    assert len(messages_in(other_inbox.account)) == 1


def test_a_display_name_trick_never_resolves_to_the_named_address(inbox):
    to = address_of(inbox)
    ingest_inbound(spool(raw_mail(to=to, sender='"bob@customer.com" <x@evil.example>'), to))
    [message] = messages_in(inbox.account)
    assert message.conversation.contact.email == "x@evil.example"
    assert message.from_name == ""


def test_an_ambiguous_from_fails_instead_of_picking_an_address(inbox):
    to = address_of(inbox)
    with pytest.raises(CannotIngest, match="could not be read"):
        ingest_inbound(spool(raw_mail(to=to, sender="alice@evil.example)<bob@customer.com>"), to))
    assert messages_in(inbox.account) == []


def test_reply_to_never_becomes_the_contact(inbox):
    to = address_of(inbox)
    ingest_inbound(spool(raw_mail(to=to, headers="Reply-To: boss@customer.example"), to))
    [message] = messages_in(inbox.account)
    assert message.conversation.contact.email == "carol@customer.example"


GMAIL_FORWARD = """FYI, see below.

---------- Forwarded message ---------
From: Carol Customer <carol@customer.example>
Date: Mon, 23 Nov 2026 at 09:00
Subject: Broken widget
To: Alice Admin <alice@alpha.example>
Cc: Dave <dave@customer.example>


My widget is broken.
"""


def test_a_members_gmail_forward_is_logged_to_the_original_sender_with_only_original_ccs(
    admin, inbox, settings
):
    # The member's own mail server: a trusted network authenticates its clients (G8).
    settings.TRUSTED_NETWORKS = [ipaddress.ip_network("192.0.2.0/24")]
    to = address_of(inbox)
    raw = raw_mail(
        to=to,
        sender="Alice Admin <alice@alpha.example>",
        subject="Fwd: Broken widget",
        message_id="<fwd1@alpha.example>",
        headers="Cc: added@alpha.example",
        body=GMAIL_FORWARD,
    )
    ingest_inbound(spool(raw, to, mail_from="alice@alpha.example"))
    [message] = messages_in(inbox.account)
    assert message.conversation.contact.email == "carol@customer.example"
    assert message.attributed_by == Message.AttributedBy.FORWARDED_BLOCK
    assert [cc["email"] for cc in message.cc] == ["dave@customer.example"]
    assert message.conversation.subject == "Broken widget"


def test_a_strangers_gmail_forward_is_logged_to_the_stranger(inbox):
    to = address_of(inbox)
    raw = raw_mail(
        to=to, sender="Eve <eve@elsewhere.example>", subject="Fwd: Broken widget", body=GMAIL_FORWARD
    )
    ingest_inbound(spool(raw, to))
    [message] = messages_in(inbox.account)
    assert message.conversation.contact.email == "eve@elsewhere.example"
    assert message.forwarded_original["sender"]["email"] == "carol@customer.example"


def test_attachments_in_raw_mail_are_stored(inbox):
    to = address_of(inbox)
    raw = (
        f"From: carol@customer.example\r\nTo: {to}\r\nSubject: File\r\nMessage-ID: <att@customer.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        "--XX\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        '--XX\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename="a.png"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--XX--\r\n"
    ).encode()
    ingest_inbound(spool(raw, to))
    [message] = messages_in(inbox.account)
    with scope(account=inbox.account):
        [stored] = message.attachments.all()
    assert (stored.filename, stored.size, stored.content_type) == ("a.png", 5, "image/png")


def test_a_message_for_no_known_address_raises(db):
    with pytest.raises(NoRecipient):
        ingest_inbound(spool(raw_mail(to="nobody@nowhere.example"), "nobody@nowhere.example"))


def test_mail_to_a_channel_that_is_off_is_not_logged(inbox):
    with scope(account=inbox.account):
        Channel.objects.filter(inbox=inbox).update(enabled=False)
    to = address_of(inbox)
    with pytest.raises(ChannelTurnedOff):  # nor dropped: the row fails with its reason (issue 16)
        ingest_inbound(spool(raw_mail(to=to), to))
    assert messages_in(inbox.account) == []


def test_the_parser_is_the_real_one():
    # These tests exercise inboxhub.lib.mail.parsing.parse_message end to end, not a stand-in.
    assert parsing.parse_message(b"Subject: x\r\n\r\nbody").subject == "x"
