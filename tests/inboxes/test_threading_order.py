"""A thread stays one conversation whatever order its messages are processed in (G3, G4).

A parent processed after its reply joins the reply's conversation; a message
proving two conversations to be one thread merges the newer into the older,
which keeps its assignment and ticket. Keys never cross inboxes or accounts.
"""

from django_scopes import scope

from inboxes.activity import describe
from inboxes.models import Conversation, ConversationEvent, Message, ThreadKey
from inboxhub.models import Membership
from ingest.pipeline import ingest_inbound
from tests.factories import MembershipFactory
from tests.inboxes.helpers import address_of, messages_in, raw_mail, spool


def deliver(inbox, message_id: str, headers: str = "", subject: str = "Order 7") -> None:
    to = address_of(inbox)
    ingest_inbound(spool(raw_mail(to=to, message_id=f"<{message_id}>", headers=headers, subject=subject), to))


def conversations_of(account) -> list[Conversation]:
    with scope(account=account):
        return list(Conversation.objects.order_by("pk"))


def test_a_parent_processed_after_its_reply_joins_the_replys_conversation(inbox):
    deliver(inbox, "reply@customer.example", "In-Reply-To: <parent@customer.example>")
    deliver(inbox, "parent@customer.example")

    [conversation] = conversations_of(inbox.account)
    reply, parent = messages_in(inbox.account)
    assert reply.conversation_id == parent.conversation_id == conversation.pk
    assert parent.threaded_by == Message.ThreadedBy.EARLIER_REPLY
    assert "they arrived first" in parent.threading_note


def test_two_replies_before_their_parent_end_in_one_conversation(inbox):
    deliver(inbox, "r1@customer.example", "In-Reply-To: <p@customer.example>")
    deliver(inbox, "r2@customer.example", "References: <p@customer.example>")
    deliver(inbox, "p@customer.example")

    assert len(conversations_of(inbox.account)) == 1


def test_a_message_linking_two_conversations_merges_the_newer_into_the_older(inbox, admin):
    agent = MembershipFactory(account=admin.account, seat=Membership.Seat.SERVICE_HUB)
    # The grandchild names only its parent, so it starts a conversation; the root starts another.
    deliver(inbox, "grandchild@customer.example", "In-Reply-To: <child@customer.example>")
    deliver(inbox, "root@customer.example")
    older, newer = conversations_of(inbox.account)
    with scope(account=inbox.account):
        Conversation.objects.filter(pk=older.pk).update(assignee=agent)
    # The child names the root: the two are one thread.
    deliver(inbox, "child@customer.example", "In-Reply-To: <root@customer.example>")

    [kept] = conversations_of(inbox.account)
    assert kept.pk == older.pk and kept.assignee_id == agent.pk
    messages = messages_in(inbox.account)
    assert {m.conversation_id for m in messages} == {older.pk} and len(messages) == 3
    child = next(m for m in messages if m.message_id == "child@customer.example")
    assert f"#{newer.pk}" in child.threading_note and "merged" in child.threading_note
    with scope(account=inbox.account):
        assert set(ThreadKey.objects.values_list("conversation_id", flat=True)) == {older.pk}
        [merge] = ConversationEvent.objects.filter(conversation=older, kind="merged")
    assert describe(merge).startswith(f"Conversation #{newer.pk} (Order 7) was merged into this one")


def test_a_key_of_another_account_never_gathers_a_parent(inbox, other_inbox):
    deliver(other_inbox, "their-reply@bravo.example", "In-Reply-To: <shared@customer.example>")
    deliver(inbox, "shared@customer.example")

    [ours] = messages_in(inbox.account)
    assert ours.threaded_by == Message.ThreadedBy.NEW_CONVERSATION
    assert len(conversations_of(other_inbox.account)) == 1
