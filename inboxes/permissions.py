"""Who may see an inbox and who may act in it (B5, B6, A3): the one place every inbox action asks.

An inbox available to everyone is open to every member. A restricted inbox is
open to the members on its access list, directly or through a team; super
admins and account admins who are not on it still see it, read-only. Agents
who are not on it do not see it at all: its pages answer 404 (RELIABILITY A4).

Every action on a conversation (reply, note, assign, close or reopen, create a
ticket) asks `conversation_action_refusal`, which adds a free seat's limits
(B7) to the access list's; services raise with its reason, pages disable the
control and show the same words.
"""

from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Q, QuerySet

from inboxes.models import Conversation, Inbox, InboxAccess
from inboxhub.models import Account, Membership
from inboxhub.permissions import assert_same_account


def _grants_of(member: Membership) -> QuerySet[InboxAccess]:
    """The access-list rows naming the member, directly or through one of their teams."""
    return InboxAccess.objects.filter(account_id=member.account_id).filter(
        Q(member=member) | Q(team__members=member)
    )


def is_on_access_list(member: Membership, inbox: Inbox) -> bool:
    """Whether the inbox's access list names the member, directly or through a team."""
    assert_same_account(member, inbox)
    return _grants_of(member).filter(inbox=inbox).exists()


def can_act_in_inbox(member: Membership, inbox: Inbox) -> bool:
    """Reply, comment, assign, close, change a ticket (B6); the permission level does not widen it."""
    assert_same_account(member, inbox)
    return inbox.access == Inbox.Access.EVERYONE or is_on_access_list(member, inbox)


def can_view_inbox(member: Membership, inbox: Inbox) -> bool:
    """See the inbox and its conversations: whoever may act, and every admin (B6)."""
    assert_same_account(member, inbox)
    return member.is_admin or can_act_in_inbox(member, inbox)


NOT_ON_ACCESS_LIST = (
    "Only the users and teams on the access list of the inbox “{inbox}” can act in it. "
    "You can see it, but not reply, comment, assign, close or change tickets."
)


def require_inbox_action(member: Membership, inbox: Inbox) -> None:
    """Raise PermissionDenied, with the reason in the user's words, unless the member may act (B6)."""
    if not can_act_in_inbox(member, inbox):
        raise PermissionDenied(NOT_ON_ACCESS_LIST.format(inbox=inbox.name))


# --- the one question every conversation action asks (H4, B6, B7) ---


class ConversationAction(models.TextChoices):
    REPLY = "reply", "reply"
    NOTE = "note", "write a note"
    ASSIGN = "assign", "assign"
    STATUS = "status", "close or reopen"
    TICKET = "ticket", "create a ticket"


# B7: what a free seat may do, and only on conversations nobody else is assigned to.
FREE_SEAT_ON_OWN_OR_UNASSIGNED = {
    ConversationAction.REPLY,
    ConversationAction.ASSIGN,
    ConversationAction.STATUS,
}
FREE_SEAT_REFUSALS = {
    ConversationAction.REPLY: (
        "With a free seat you can reply only to conversations that are unassigned or assigned to you; "
        "this one is assigned to {assignee}."
    ),
    ConversationAction.ASSIGN: (
        "With a free seat you can assign only conversations that are unassigned or assigned to you; "
        "this one is assigned to {assignee}. Ask an admin for a paid seat to reassign it."
    ),
    ConversationAction.STATUS: (
        "With a free seat you can close or reopen only conversations that are unassigned or assigned "
        "to you; this one is assigned to {assignee}."
    ),
}
PAID_SEAT_ONLY = {
    ConversationAction.TICKET: "Tickets come with a paid seat. Ask an admin for one to create tickets.",
}


def conversation_action_refusal(member: Membership, conversation: Conversation, action: str) -> str | None:
    """Why the member may not take this action on the conversation, in their words; None when they may.

    B6: only members who may act in the inbox (its access list, when restricted). B7: a free seat
    replies to, assigns, closes and reopens conversations that are unassigned or assigned to them,
    writes notes, and takes no paid-only action. The conversation's assignee is read as given: a
    service passes the row it holds locked.
    """
    assert_same_account(member, conversation)
    return _refusal(
        member, conversation, ConversationAction(action), can_act_in_inbox(member, conversation.inbox)
    )


def _refusal(member: Membership, conversation: Conversation, action: str, can_act: bool) -> str | None:
    if not can_act:
        return NOT_ON_ACCESS_LIST.format(inbox=conversation.inbox.name)
    if member.has_paid_seat:
        return None
    if action in PAID_SEAT_ONLY:
        return PAID_SEAT_ONLY[action]
    if action in FREE_SEAT_ON_OWN_OR_UNASSIGNED and conversation.assignee_id not in (None, member.pk):
        assignee = conversation.assignee
        return FREE_SEAT_REFUSALS[action].format(assignee=assignee.user.full_name or assignee.user.email)
    return None


def require_conversation_action(member: Membership, conversation: Conversation, action: str) -> None:
    """Raise PermissionDenied with the reason unless the member may take the action (H4, B6, B7)."""
    refusal = conversation_action_refusal(member, conversation, action)
    if refusal:
        raise PermissionDenied(refusal)


def conversation_refusals(member: Membership, conversation: Conversation) -> dict[str, str]:
    """Every action's refusal ("" when allowed), for the thread page to disable controls and say why."""
    assert_same_account(member, conversation)
    can_act = can_act_in_inbox(member, conversation.inbox)
    return {
        action.value: _refusal(member, conversation, action, can_act) or "" for action in ConversationAction
    }


def visible_inboxes(member: Membership) -> QuerySet[Inbox]:
    """The account's inboxes the member can see, in one query (B6, RELIABILITY A4)."""
    # Through the account's related manager: each inbox comes with its account, no query per row.
    inboxes = member.account.inboxes.all()
    if member.is_admin:
        return inboxes
    granted = _grants_of(member).values("inbox_id")
    return inboxes.filter(Q(access=Inbox.Access.EVERYONE) | Q(pk__in=granted))


def create_inbox_refusal(account: Account) -> str | None:
    """Why the account may not create another inbox (A3), or None when it may."""
    if account.allows_many_inboxes or not Inbox.objects.filter(account=account).exists():
        return None
    return (
        f"Your {account.get_tier_display()} plan includes one inbox. "
        "More inboxes come with the Professional and Enterprise plans."
    )
