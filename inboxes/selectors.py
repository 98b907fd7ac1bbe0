"""Reads for the inbox, thread, contact and failed-message pages; every list is bounded."""

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.parser import BytesParser

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Left

from channels_conn.models import InboundMessage
from inboxes.models import Contact, Conversation, Inbox, Message
from inboxes.permissions import visible_inboxes as visible_inboxes_of
from inboxhub.models import Account, Membership

PAGE_SIZE = 50
SNIPPET_LENGTH = 140
FAILED_LIMIT = 200


@dataclass
class Page:
    items: list
    next_cursor: str | None


def _parse_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """`<iso time>_<id>`; anything else reads as the first page."""
    moment, _, pk = (cursor or "").rpartition("_")
    try:
        return datetime.fromisoformat(moment), int(pk)
    except ValueError:
        return None


VIEWS = {
    "unassigned": "Unassigned",
    "mine": "Assigned to me",
    "open": "All open",
    "closed": "Closed",
}
DEFAULT_VIEW = "open"


def _in_view(view: str, member: Membership) -> Q:
    open_ = Q(status=Conversation.Status.OPEN)
    return {
        "unassigned": open_ & Q(assignee__isnull=True),
        "mine": open_ & Q(assignee=member),
        "open": open_,
        "closed": Q(status=Conversation.Status.CLOSED),
    }[view]


def view_counts(inbox: Inbox, member: Membership) -> dict[str, int]:
    """How many conversations each open view holds (H1): three counts, each answered by an index alone.

    Closed has no count: it grows without end, and counting it would read it all.
    """
    open_ = Conversation.objects.filter(
        account_id=inbox.account_id, inbox=inbox, status=Conversation.Status.OPEN
    ).order_by()
    return {
        "unassigned": open_.filter(assignee__isnull=True).count(),
        "mine": open_.filter(assignee=member).count(),
        "open": open_.count(),
    }


def conversation_page(
    inbox: Inbox,
    *,
    view: str = "",
    member: Membership | None = None,
    cursor: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """The inbox's conversations in a view, most recent message first, with keyset paging (H1).

    No view: every conversation of the inbox.
    """
    last_message = Message.objects.filter(account=inbox.account, conversation=OuterRef("pk")).order_by(
        "-created_at", "-pk"
    )
    count = (
        Message.objects.filter(account=inbox.account, conversation=OuterRef("pk"))
        .order_by()
        .values("conversation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    conversations = Conversation.objects.filter(account=inbox.account, inbox=inbox)
    if view:
        conversations = conversations.filter(_in_view(view, member))
    conversations = (
        conversations.select_related("contact", "assignee__user")
        .annotate(
            snippet=Left(Subquery(last_message.values("text")[:1]), SNIPPET_LENGTH),
            message_count=Coalesce(Subquery(count, output_field=IntegerField()), Value(0)),
        )
        .order_by("-last_message_at", "-pk")
    )
    after = _parse_cursor(cursor)
    if after is not None:
        moment, pk = after
        conversations = conversations.filter(last_message_at__lte=moment).exclude(
            last_message_at=moment, pk__gte=pk
        )
    items = list(conversations[: size + 1])
    next_cursor = None
    if len(items) > size:
        items = items[:size]
        last = items[-1]
        next_cursor = f"{last.last_message_at.isoformat()}_{last.pk}"
    return Page(items, next_cursor)


def thread_messages(conversation: Conversation) -> QuerySet[Message]:
    """Every message of a conversation in arrival order, with attachments (H2)."""
    return (
        conversation.messages.filter(account=conversation.account)
        .prefetch_related("attachments")
        .order_by("created_at", "pk")
    )


def visible_contacts(member: Membership) -> QuerySet[Contact]:
    """The contacts the member may see: with a conversation in an inbox they can see, or none at all (B6).

    A contact whose conversations are all in inboxes hidden from the member stays hidden too, name and
    address included. Admins see every inbox, so every contact.
    """
    contacts = Contact.objects.filter(account_id=member.account_id)
    if member.is_admin:
        return contacts
    conversations = Conversation.objects.filter(account_id=member.account_id, contact=OuterRef("pk"))
    seen = conversations.filter(inbox__in=visible_inboxes_of(member))
    return contacts.filter(Exists(seen) | ~Exists(conversations))


def contact_page(member: Membership, *, cursor: str | None = None, size: int = PAGE_SIZE) -> Page:
    """The contacts the member may see, newest first, with how many messages each has logged (H6)."""
    contacts = (
        visible_contacts(member)
        .select_related("owner__user")
        .annotate(
            message_count=Count(
                "conversations__messages",
                filter=~_different_sender("conversations__messages__"),
            )
        )
        .order_by("-pk")
    )
    if cursor and cursor.isdigit():
        contacts = contacts.filter(pk__lt=int(cursor))
    items = list(contacts[: size + 1])
    next_cursor = str(items[size - 1].pk) if len(items) > size else None
    return Page(items[:size], next_cursor)


def _different_sender(prefix: str = "") -> Q:
    return Q(**{f"{prefix}sender_role": Message.SenderRole.DIFFERENT_SENDER})


def contact_timeline(
    contact: Contact, *, inboxes: QuerySet[Inbox] | None = None, size: int = 100
) -> list[Message]:
    """The messages logged to a contact, newest first (H6); a different sender's are not theirs.

    `inboxes`: only messages of these inboxes, the ones the reader can see (B6).
    """
    messages = Message.objects.filter(account=contact.account, conversation__contact=contact)
    if inboxes is not None:
        messages = messages.filter(inbox__in=inboxes)
    return list(
        messages.exclude(_different_sender())
        .select_related("conversation__inbox")
        .prefetch_related("attachments")
        .order_by("-created_at", "-pk")[:size]
    )


@dataclass
class FailedMessage:
    inbound: InboundMessage
    subject: str
    sender: str


def _headline(raw: bytes) -> tuple[str, str]:
    """Subject and From of a raw message for the failed list; it failed once, so read defensively."""
    try:
        headers = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
        return str(headers.get("subject", "") or ""), str(headers.get("from", "") or "")
    except Exception:
        return "", ""


def failed_inbound_for(account: Account, *, limit: int = FAILED_LIMIT) -> list[FailedMessage]:
    """The account's spooled messages that failed, newest first, with their subject and sender (G5)."""
    return [FailedMessage(row, *_headline(bytes(row.raw))) for row in failed_inbound_rows(account)[:limit]]


def failed_inbound_rows(account: Account) -> QuerySet[InboundMessage]:
    """The account's failed spool rows, newest first: one range of the `inbound_account_state` index."""
    return InboundMessage.objects.filter(account=account, state=InboundMessage.State.FAILED).order_by(
        "-received_at", "-pk"
    )


def inbound_for(account: Account, inbound_id: int) -> InboundMessage | None:
    """The account's spooled message with this id, else None (A2)."""
    return InboundMessage.objects.filter(account=account, pk=inbound_id).first()


def assignable_members(inbox: Inbox) -> QuerySet[Membership]:
    """The members who can act in the inbox, so may be assigned its conversations (B5, B6), by name."""
    members = Membership.objects.filter(account_id=inbox.account_id).select_related("user")
    if inbox.access == Inbox.Access.SPECIFIC:
        granted = Q(inbox_grants__inbox=inbox) | Q(teams__inbox_grants__inbox=inbox)
        members = members.filter(granted).distinct()
    return members.order_by("user__full_name", "pk")
