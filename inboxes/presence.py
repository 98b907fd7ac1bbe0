"""Who else is on a conversation, and replies that crossed (issue 17, "Who else is here").

Presence: the thread page sends a heartbeat every HEARTBEAT_SECONDS (static/js/presence.js) with
the member's state, viewing or writing a reply; each heartbeat upserts one `Presence` row per member
and conversation and answers with the other members there now (seen within EXPIRY_SECONDS). Leaving
the page marks the row left. Rows live in the database, not the cache: `make run` without Redis has one
local-memory cache per web process, and a heartbeat is one indexed upsert and one indexed read.

Crossed replies: the composer carries `seen_reply`, the newest outgoing reply the agent had seen
when they started writing. `check_crossed_replies`, asked by `send_reply` under the conversation's
row lock, looks for newer replies: another member's stops the send with `ReplyCrossed` ("Ben
replied 30 s ago — send anyway?") unless the agent confirmed that very reply; the agent's own with
the same text is the same form sent twice (a double click): `ReplyAlreadySent`, never sent again.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django_scopes import scopes_disabled

from inboxes.models import Conversation, Inbox, InboxAccess, Message, Presence
from inboxhub.lib.db import sql_datetime
from inboxhub.models import Membership

HEARTBEAT_SECONDS = 10
# A page that stopped beating (closed without a goodbye, computer asleep) drops out after this.
EXPIRY_SECONDS = 30
# The page reports "writing a reply" for this long after the last keystroke in the reply box.
TYPING_SECONDS = 10
# How long a goodbye holds off the heartbeats of the same member and conversation.
GOODBYE_HOLD_SECONDS = 5
GONE = "gone"

ADMIN_LEVELS = (Membership.Permission.SUPER_ADMIN, Membership.Permission.ACCOUNT_ADMIN)


def member_name(member: Membership | None, fallback: str = "Someone") -> str:
    if member is None:
        return fallback
    return member.user.full_name or member.user.email


# --- presence ---


def record_presence(conversation: Conversation, *, state: str, by: Membership) -> None:
    """Note the member on the conversation now, viewing or writing a reply: one upsert.

    Not within GOODBYE_HOLD_SECONDS of the member leaving the page: a heartbeat sent just before
    the goodbye can arrive after it (two requests at once), and would bring them back for the
    whole expiry.
    """
    _upsert_presence(conversation, by, Presence.State(state), held_by_goodbye=True)


def leave_conversation(conversation: Conversation, *, by: Membership) -> None:
    """The member left the conversation's page: gone for the others at once (the row is marked left,
    and pruned with the others)."""
    _upsert_presence(conversation, by, Presence.State.LEFT, held_by_goodbye=False)


def _upsert_presence(
    conversation: Conversation, by: Membership, state: Presence.State, *, held_by_goodbye: bool
) -> None:
    """The member's row for the conversation set to `state` now, in one statement (PostgreSQL, SQLite).

    `held_by_goodbye`: leave a row marked left within GOODBYE_HOLD_SECONDS as it is. Two requests of
    one member at once (a heartbeat and a goodbye) each wait for the other's row: the later one sees
    the earlier one's row and its condition is checked against it.
    """
    assert conversation.account_id == by.account_id, "member and conversation in different accounts"
    now = timezone.now()
    table = connection.ops.quote_name(Presence._meta.db_table)
    hold = f" WHERE NOT ({table}.state = %s AND {table}.seen_at > %s)" if held_by_goodbye else ""
    params = [by.account_id, by.pk, conversation.pk, state.value, sql_datetime(now)]
    if held_by_goodbye:
        params += [Presence.State.LEFT.value, sql_datetime(now - timedelta(seconds=GOODBYE_HOLD_SECONDS))]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (account_id, member_id, conversation_id, state, seen_at) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (account_id, member_id, conversation_id) "
            f"DO UPDATE SET state = EXCLUDED.state, seen_at = EXCLUDED.seen_at{hold}",
            params,
        )


def prune_presence(*, older_than_seconds: int = 3600) -> int:
    """Delete rows of pages that stopped beating without a goodbye (closed, asleep); how many.

    They are already left out of every answer after EXPIRY_SECONDS; this keeps the table as small
    as the number of pages open recently. Scheduled in CELERY_BEAT_SCHEDULE.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    with scopes_disabled():  # a sweep across accounts that reads nothing out
        deleted, _ = Presence.objects.filter(seen_at__lt=cutoff).delete()
    return deleted


@dataclass(frozen=True)
class Here:
    name: str
    typing: bool


def _may_see(inbox: Inbox) -> Q:
    """Members who may see the inbox (B6): admins, and whoever its access list names when restricted."""
    if inbox.access == Inbox.Access.EVERYONE:
        return Q()
    grants = InboxAccess.objects.filter(account_id=inbox.account_id, inbox=inbox)
    return (
        Q(member__permission__in=ADMIN_LEVELS)
        | Q(member__in=grants.exclude(member=None).values("member"))
        | Q(member__teams__in=grants.exclude(team=None).values("team"))
    )


def others_here(conversation: Conversation, *, viewer: Membership) -> list[Here]:
    """The other members on the conversation now, writers first, then by name; one query.

    Only the conversation's account and members who may still see its inbox: someone taken off
    the access list drops out at once, not when their row expires.
    """
    since = timezone.now() - timedelta(seconds=EXPIRY_SECONDS)
    rows = (
        Presence.objects.filter(
            account_id=conversation.account_id, conversation=conversation, seen_at__gte=since
        )
        .exclude(state=Presence.State.LEFT)
        .filter(_may_see(conversation.inbox))
        .exclude(member=viewer)
        .select_related("member__user")
        .distinct()
    )
    here = [Here(member_name(row.member), row.state == Presence.State.TYPING) for row in rows]
    return sorted(here, key=lambda h: (not h.typing, h.name.casefold()))


# --- crossed replies ---


class ReplyAlreadySent(Exception):  # noqa: N818 - not an error: the reply is on its way
    """The same form was posted again (a double click): its reply was stored by the first post."""

    def __init__(self, reply: Message) -> None:
        super().__init__(f"{reply.pk} already sent")
        self.reply = reply


class ReplyCrossed(Exception):  # noqa: N818 - a refusal the agent can override, not an error
    """Another member replied since the agent started writing: sending waits for their confirmation."""

    def __init__(self, reply: Message) -> None:
        super().__init__(f"{reply.pk} crossed")
        self.reply = reply

    @property
    def warning(self) -> str:
        return crossed_warning(self.reply)


def ago(moment, now=None) -> str:
    """How long ago, in the fewest words: "30 s", "4 min", "2 h", "3 days"."""
    seconds = max(0, int(((now or timezone.now()) - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    days = seconds // 86400
    return f"{days} day{'s' if days != 1 else ''}"


def crossed_warning(reply: Message) -> str:
    """What the composer asks, e.g. "Ben Baker replied 30 s ago — send anyway?"."""
    name = member_name(reply.sent_by, reply.from_name or "Someone")
    return f"{name} replied {ago(reply.created_at)} ago — send anyway?"


def newest_reply_id(conversation: Conversation) -> int:
    """The newest outgoing reply's id, 0 when there is none: what a composer opened now has seen."""
    newest = (
        conversation.messages.filter(account_id=conversation.account_id, direction=Message.Direction.OUTGOING)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    return newest or 0


def check_crossed_replies(
    conversation: Conversation, *, seen_reply: int, confirmed_reply: int, text: str, by: Membership
) -> None:
    """Stop a send that would cross another reply, or that repeats the agent's own.

    Raises ReplyAlreadySent when the agent's own reply newer than `seen_reply` has the same `text`
    (the same form posted twice); ReplyCrossed when another member replied after `seen_reply` and
    the agent has not confirmed that reply (`confirmed_reply`). Call under the conversation's row
    lock, so two sends in flight see each other.
    """
    newer = list(
        conversation.messages.filter(
            account_id=conversation.account_id,
            direction=Message.Direction.OUTGOING,
            pk__gt=max(seen_reply, 0),
        )
        .select_related("sent_by__user")
        .order_by("-pk")
    )
    for reply in newer:
        if reply.sent_by_id == by.pk and reply.text == text:
            raise ReplyAlreadySent(reply)
    crossing = [reply for reply in newer if reply.sent_by_id != by.pk and reply.pk > confirmed_reply]
    if crossing:
        raise ReplyCrossed(crossing[0])
