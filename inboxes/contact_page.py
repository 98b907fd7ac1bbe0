"""What the contact page reads (H6, C8, C9): its timeline a page at a time, its conversations, its merges.

Everything is limited to the inboxes the reader may see (B6), and each part is one
query however long the contact's history: the timeline pages by keyset on
(time, id), newest first.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from inboxes.contact_forms import ContactMergeForm
from inboxes.contact_merge import addresses_of, merges_of
from inboxes.contact_panel import other_conversations
from inboxes.models import Contact, Message
from inboxes.permissions import visible_inboxes
from inboxhub.models import Membership
from inboxhub.permissions import can

TIMELINE_PAGE = 50
CONVERSATIONS_SHOWN = 50


@dataclass
class TimelinePage:
    messages: list[Message]
    next_cursor: str | None


def _cursor(value: str | None) -> tuple[datetime, int] | None:
    """`<iso time>_<id>`; anything else reads as the first page."""
    moment, _, pk = (value or "").rpartition("_")
    try:
        parsed = datetime.fromisoformat(moment), int(pk)
    except ValueError:
        return None
    return parsed if parsed[0].tzinfo is not None else None


def timeline_page(
    contact: Contact, member: Membership, *, before: str | None = None, size: int = TIMELINE_PAGE
) -> TimelinePage:
    """Every message logged to the contact, newest first, in the inboxes the member may see (H6).

    Incoming mail (a member's forward logged to its original sender included, C8), the team's
    replies to it; not internal notes (the team's, H4), nor a different sender's mail in the
    contact's thread (not theirs).
    """
    messages = (
        Message.objects.filter(
            account_id=contact.account_id, conversation__contact=contact, inbox__in=visible_inboxes(member)
        )
        .exclude(direction=Message.Direction.NOTE)
        .exclude(sender_role=Message.SenderRole.DIFFERENT_SENDER)
    )
    after = _cursor(before)
    if after is not None:
        moment, pk = after
        messages = messages.filter(Q(created_at__lt=moment) | Q(created_at=moment, pk__lt=pk))
    rows = list(
        messages.select_related("conversation__inbox", "sent_by__user")
        .prefetch_related("attachments")
        .order_by("-created_at", "-pk")[: size + 1]
    )
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = f"{rows[-1].created_at.isoformat()}_{rows[-1].pk}"
    return TimelinePage(rows, next_cursor)


def contact_page(
    member: Membership,
    contact: Contact,
    *,
    before: str | None = None,
    merge_form: ContactMergeForm | None = None,
) -> dict:
    """The contact page's context beside the contact and its owner form (H6)."""
    conversations = other_conversations(contact, member, limit=CONVERSATIONS_SHOWN)
    may_merge = can(member, "manage_inboxes")
    if may_merge and merge_form is None:
        merge_form = ContactMergeForm(contact=contact)
    return {
        "timeline": timeline_page(contact, member, before=before),
        "conversations": conversations[:CONVERSATIONS_SHOWN],
        "more_conversations": len(conversations) > CONVERSATIONS_SHOWN,
        "addresses": addresses_of(contact),
        "merges": merges_of(contact),
        "merge_form": merge_form if may_merge else None,
    }
