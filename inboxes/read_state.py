"""Unread state per viewer (H1): a conversation with a message newer than the member last opened it is unread.

One `ReadState` row per member and conversation they opened, written by an upsert, so opening a
thread costs one statement whatever its history. The list reads it in its own query
(`selectors.conversation_page` annotates `is_unread`), never one query per row.
"""

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, Subquery
from django.utils import timezone

from inboxes.models import Conversation, Message, ReadState
from inboxhub.models import Membership


def mark_read(conversation: Conversation, *, by: Membership) -> None:
    """Record that the member has just opened the conversation: its messages so far are read (H1)."""
    assert conversation.account_id == by.account_id, "member and conversation in different accounts"
    # The later of now and the last message: a message stamped a moment ahead of this clock still reads.
    read_at = max(timezone.now(), conversation.last_message_at)
    ReadState.objects.bulk_create(
        [ReadState(account_id=by.account_id, member=by, conversation=conversation, read_at=read_at)],
        update_conflicts=True,
        unique_fields=["account", "member", "conversation"],
        update_fields=["read_at"],
    )


def unread_for(member: Membership) -> dict:
    """Annotations for a conversation queryset: `is_unread` for the member, and the `read_at` it rests on.

    Unread: never opened, or a message arrived after the member last opened it that is not their
    own (an agent's reply or note does not make the conversation unread to them). Index probes per
    row inside the list's one query. (Nesting the message check inside the read-state check reads
    better but lets PostgreSQL hash every read state of the member: 200 ms at 50,000.)
    """
    read_at = ReadState.objects.filter(
        account_id=member.account_id, member=member, conversation=OuterRef("pk")
    ).values("read_at")[:1]
    newer = Message.objects.filter(
        account_id=OuterRef("account_id"), conversation=OuterRef("pk"), created_at__gt=OuterRef("read_at")
    ).exclude(sent_by=member)
    return {
        "read_at": Subquery(read_at),
        "is_unread": ExpressionWrapper(Q(read_at__isnull=True) | Exists(newer), output_field=BooleanField()),
    }
