"""Who may see an inbox and who may act in it (B5, B6, A3): the one place every inbox action asks.

An inbox available to everyone is open to every member. A restricted inbox is
open to the members on its access list, directly or through a team; super
admins and account admins who are not on it still see it, read-only. Agents
who are not on it do not see it at all: its pages answer 404 (RELIABILITY A4).
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from inboxes.models import Inbox, InboxAccess
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


def require_inbox_action(member: Membership, inbox: Inbox) -> None:
    """Raise PermissionDenied, with the reason in the user's words, unless the member may act (B6)."""
    if not can_act_in_inbox(member, inbox):
        raise PermissionDenied(
            f"Only the users and teams on the access list of the inbox “{inbox.name}” can act in it. "
            "You can see it, but not reply, comment, assign, close or change tickets."
        )


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
