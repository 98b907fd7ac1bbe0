"""Internal notes: what agents write on a conversation for each other, never emailed (H4).

A note is a Message of direction `note`: it sits in the thread in order with
the mail, but has no delivery state, so no worker ever sends it; it has no
Message-ID, so no reply names it; it does not move the conversation's last
message, so the list shows the contact's and agents' mail as before.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from inboxes.activity import record_event
from inboxes.models import Conversation, ConversationEvent, Message
from inboxes.permissions import ConversationAction, require_conversation_action
from inboxhub.models import Membership

NOTE_MAX_LENGTH = 20_000
EMPTY_NOTE = "Write a note before saving it."


@transaction.atomic
def add_note(conversation: Conversation, *, body: str, by: Membership) -> Message:
    """Add an internal note to the conversation, seen by the team only (H4, B6)."""
    assert conversation.account_id == by.account_id, "member and conversation in different accounts"
    require_conversation_action(by, conversation, ConversationAction.NOTE)
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise ValidationError({"body": EMPTY_NOTE})
    if len(body) > NOTE_MAX_LENGTH:
        raise ValidationError({"body": f"A note is at most {NOTE_MAX_LENGTH:,} characters."})
    note = Message.objects.create(
        account_id=conversation.account_id,
        conversation=conversation,
        inbox_id=conversation.inbox_id,
        direction=Message.Direction.NOTE,
        from_name=by.user.full_name,
        from_email=by.user.email,
        text=body,
        created_at=timezone.now(),
        sent_by=by,
    )
    record_event(conversation, ConversationEvent.Kind.NOTE_ADDED, by=by, message=note.pk)
    return note
