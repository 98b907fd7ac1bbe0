"""A conversation's activity: who did what, when (H4). Written by each change, in its transaction.

Every writer calls `record_event` (or builds rows with `event` for a bulk write):
the actions of this app, closing and reopening, automatic assignment in
routing, tickets in tickets. Names are kept in the details as they were, so
an entry still reads right after a member is renamed or removed.
"""

from django.utils import timezone

from inboxes import live
from inboxes.models import Conversation, ConversationEvent
from inboxhub.models import Membership

Kind = ConversationEvent.Kind
ACTIVITY_LIMIT = 50


def name_of(member: Membership | None) -> str:
    if member is None:
        return ""
    return member.user.full_name or member.user.email


def event(
    conversation: Conversation, kind: str, *, by: Membership | None = None, at=None, **details
) -> ConversationEvent:
    """An unsaved entry; `by` None: InboxHub did it (automatic assignment, a worker's delivery)."""
    if by is not None:
        assert by.account_id == conversation.account_id, "member and conversation in different accounts"
    live.note_change(conversation.account_id, conversation.pk)  # open lists and the thread follow (H5)
    return ConversationEvent(
        account_id=conversation.account_id,
        conversation_id=conversation.pk,
        actor=by,
        kind=Kind(kind),
        details={"actor": name_of(by), **details},
        created_at=at or timezone.now(),
    )


def record_event(conversation: Conversation, kind: str, *, by: Membership | None = None, **details) -> None:
    """Write one entry of the conversation's activity; call it inside the change's transaction."""
    event(conversation, kind, by=by, **details).save()


def assignment_event(
    conversation: Conversation,
    assignee: Membership | None,
    previous: Membership | None,
    *,
    by: Membership | None,
    at=None,
    reason: str = "",
) -> ConversationEvent:
    """An unsaved assigned or unassigned entry; without `by`, automatic assignment did it with `reason`."""
    kind = Kind.ASSIGNED if assignee is not None else Kind.UNASSIGNED
    return event(
        conversation,
        kind,
        by=by,
        at=at,
        assignee=name_of(assignee),
        assignee_id=assignee.pk if assignee else None,
        previous=name_of(previous),
        previous_id=previous.pk if previous else None,
        reason=reason,
    )


def recent_activity(conversation: Conversation, *, limit: int = ACTIVITY_LIMIT) -> list[ConversationEvent]:
    """The conversation's newest entries first, at most `limit`, each with its `text`, in one query."""
    entries = list(
        ConversationEvent.objects.filter(
            account_id=conversation.account_id, conversation_id=conversation.pk
        ).order_by("-created_at", "-pk")[:limit]
    )
    for entry in entries:
        entry.text = describe(entry)
    return entries


def describe(entry: ConversationEvent) -> str:
    """The entry in words, as the Activity list shows it."""
    d = entry.details
    actor = d.get("actor") or "InboxHub"
    if entry.kind == Kind.ASSIGNED:
        if not d.get("actor"):
            # The decision's own summary names whom it chose and why (D8).
            return (
                f"Automatic assignment: {d['reason']}"
                if d.get("reason")
                else f"Automatically assigned to {d['assignee']}"
            )
        if d.get("assignee_id") == entry.actor_id and not d.get("previous"):
            return f"{actor} took it"
        if d.get("previous"):
            return f"{actor} reassigned it from {d['previous']} to {d['assignee']}"
        return f"{actor} assigned it to {d['assignee']}"
    if entry.kind == Kind.UNASSIGNED:
        if not d.get("actor"):
            reason = f" ({d['reason']})" if d.get("reason") else ""
            return f"Automatic assignment unassigned {d.get('previous') or 'it'}{reason}"
        return f"{actor} unassigned {d['previous']}" if d.get("previous") else f"{actor} unassigned it"
    texts = {
        Kind.CLOSED: f"{actor} closed it",
        Kind.REOPENED: f"{actor} reopened it",
        Kind.NOTE_ADDED: f"{actor} added an internal note",
        Kind.REPLY_SENT: f"{actor} sent a reply",
        Kind.REPLY_FAILED: f"A reply could not be delivered: {d.get('error', '')}",
        Kind.REPLY_BOUNCED: f"A reply came back undelivered: {d.get('error', '')}",
        Kind.TICKET_CREATED: f"{actor} made it a ticket in {d.get('pipeline', '')} at {d.get('stage', '')}",
        Kind.TICKET_MOVED: f"{actor} moved its ticket from {d.get('previous', '')} to {d.get('stage', '')}",
        Kind.TICKET_PRIORITY: (
            f"{actor} set its ticket's priority to {d.get('priority', '')} (was {d.get('previous', '')})"
        ),
        Kind.TICKET_OWNER: (
            f"{actor} gave its ticket to {d['owner']}"
            if d.get("owner")
            else f"{actor} left its ticket without an owner"
        ),
        Kind.MERGED: (
            f"Conversation #{d.get('merged', '')} ({d.get('subject', '')}) was merged into this one: "
            "a message showed they are one thread"
        ),
        Kind.CONTACT_MERGED: (
            f"{actor} merged the contact {d.get('merged_contact', '')} into {d.get('kept_contact', '')}: "
            "this conversation moved with it"
        ),
    }
    return texts.get(entry.kind, entry.get_kind_display())
