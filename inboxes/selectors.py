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
from inboxes.read_state import unread_for
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
        parsed = datetime.fromisoformat(moment), int(pk)
    except ValueError:
        return None
    return parsed if parsed[0].tzinfo is not None else None


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


@dataclass
class Counts:
    """Open conversations per inbox and per view, for one member (H1); Closed is never counted."""

    by_inbox: dict[int, dict[str, int]]

    def of(self, inbox_id: int) -> dict[str, int]:
        return self.by_inbox.get(inbox_id, {"open": 0, "unassigned": 0, "mine": 0})

    @property
    def mine(self) -> int:
        """Open conversations assigned to the member in every inbox counted."""
        return sum(counts["mine"] for counts in self.by_inbox.values())


def conversation_counts(member: Membership, inbox_ids: list[int]) -> Counts:
    """The counts of the sidebar and the view tabs in one query (H1).

    Read from the partial index `conversation_open_counts` alone (an index-only scan of the open
    conversations; bench/inbox.py measures it at 100,000), so every writer keeps them right without
    a counter to maintain. Closed has no count: it grows without end.
    """
    rows = (
        Conversation.objects.filter(
            account_id=member.account_id, status=Conversation.Status.OPEN, inbox_id__in=inbox_ids
        )
        .order_by()
        .values("inbox_id")
        .annotate(
            open=Count("inbox_id"),
            unassigned=Count("inbox_id", filter=Q(assignee__isnull=True)),
            mine=Count("inbox_id", filter=Q(assignee_id=member.pk)),
        )
    )
    return Counts({row.pop("inbox_id"): row for row in rows})


def _listed(conversations: QuerySet[Conversation], member: Membership | None) -> QuerySet[Conversation]:
    """A list's rows with contact, assignee, snippet, message count and the viewer's unread state: one query.

    The snippet is the last message written to or by the contact, never an internal note.
    """
    last_message = (
        Message.objects.filter(account_id=OuterRef("account_id"), conversation=OuterRef("pk"))
        .exclude(direction=Message.Direction.NOTE)
        .order_by("-created_at", "-pk")
    )
    # Notes included: counted from the index `message_conversation_time` alone, however long the thread.
    message_count = (
        Message.objects.filter(account_id=OuterRef("account_id"), conversation=OuterRef("pk"))
        .order_by()
        .values("conversation")
        .annotate(n=Count("*"))
        .values("n")
    )
    conversations = conversations.select_related("contact", "assignee__user").annotate(
        snippet=Left(Subquery(last_message.values("text")[:1]), SNIPPET_LENGTH),
        message_count=Coalesce(Subquery(message_count, output_field=IntegerField()), Value(0)),
    )
    if member is not None:
        conversations = conversations.annotate(**unread_for(member))
    return conversations.order_by("-last_message_at", "-pk")


def _keyset_page(conversations: QuerySet[Conversation], cursor: str | None, size: int | None) -> Page:
    """Rows after the cursor, newest message first; ties on the time are ordered by id, so none repeats."""
    size = size or PAGE_SIZE
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


def conversation_page(
    inbox: Inbox,
    *,
    view: str = "",
    member: Membership | None = None,
    cursor: str | None = None,
    size: int | None = None,
    only: list[int] | None = None,
) -> Page:
    """The inbox's conversations in a view, most recent message first, with keyset paging (H1).

    No view: every conversation of the inbox. With a member, each row says whether they read it.
    `only`: just those of these conversations still in the view (an open list's changed rows, H5).
    """
    conversations = Conversation.objects.filter(account_id=inbox.account_id, inbox=inbox)
    if view:
        conversations = conversations.filter(_in_view(view, member))
    if only is not None:
        conversations = conversations.filter(pk__in=only)
    return _keyset_page(_listed(conversations, member), cursor, size)


def assigned_page(
    member: Membership,
    *,
    inbox_ids: list[int],
    cursor: str | None = None,
    size: int | None = None,
    only: list[int] | None = None,
) -> Page:
    """Open conversations assigned to the member in the inboxes given (those they see), newest first (H1)."""
    conversations = Conversation.objects.filter(
        account_id=member.account_id,
        status=Conversation.Status.OPEN,
        assignee=member,
        inbox_id__in=inbox_ids,
    ).select_related("inbox")
    if only is not None:
        conversations = conversations.filter(pk__in=only)
    return _keyset_page(_listed(conversations, member), cursor, size)


THREAD_PAGE_SIZE = 30


@dataclass
class ThreadPage:
    messages: list[Message]  # oldest first
    older_count: int  # how many messages come before the first one
    older_cursor: str | None  # where the page before this one ends, or None on the first page


def thread_messages(
    conversation: Conversation, *, before: str | None = None, size: int = THREAD_PAGE_SIZE
) -> ThreadPage:
    """A page of a conversation's messages, the newest or those before a cursor, oldest first (H2).

    Keyset paging on (created_at, id): a 2,000-message thread reads one page, and the same few
    queries whatever its length (attachments and the claimed member come with the page).
    """
    messages = Message.objects.filter(account_id=conversation.account_id, conversation=conversation)
    after = _parse_cursor(before)
    if after is not None:
        moment, pk = after
        messages = messages.filter(created_at__lte=moment).exclude(created_at=moment, pk__gte=pk)
    page = list(
        messages.select_related("claimed_member__user")
        .prefetch_related("attachments")
        .order_by("-created_at", "-pk")[: size + 1]
    )
    older_count, older_cursor = 0, None
    if len(page) > size:
        page = page[:size]
        oldest = page[-1]
        older_cursor = f"{oldest.created_at.isoformat()}_{oldest.pk}"
        older = messages.filter(created_at__lte=oldest.created_at).exclude(
            created_at=oldest.created_at, pk__gte=oldest.pk
        )
        older_count = older.order_by().count()
    page.reverse()
    return ThreadPage(page, older_count, older_cursor)


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
    members = Membership.joined_members(inbox.account_id)
    if inbox.access == Inbox.Access.SPECIFIC:
        granted = Q(inbox_grants__inbox=inbox) | Q(teams__inbox_grants__inbox=inbox)
        members = members.filter(granted).distinct()
    return members.order_by("user__full_name", "pk")
