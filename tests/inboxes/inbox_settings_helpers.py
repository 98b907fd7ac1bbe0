"""Builders shared by the inbox settings tests (B1–B7, E1–E2)."""

from django.urls import reverse
from django_scopes import scope, scopes_disabled

from inboxes.models import Inbox, InboxAccess
from inboxes.services import add_inbox
from inboxhub.models import AuditEntry, Membership
from tests.factories import MembershipFactory, TeamFactory


def settings_url(name: str, account, *args) -> str:
    return reverse(f"inbox_settings:{name}", args=[account.subdomain, *args])


def default_inbox_of(account) -> Inbox:
    with scope(account=account):
        return account.inboxes.get(is_default=True)


def make_inbox(admin: Membership, name: str = "Billing", *, members=(), teams=()) -> Inbox:
    """Another inbox of the admin's account; restricted to `members` and `teams` when any are given."""
    access = Inbox.Access.SPECIFIC if members or teams else Inbox.Access.EVERYONE
    with scope(account=admin.account):
        return add_inbox(admin.account, name=name, access=access, members=members, teams=teams, by=admin)


def make_member(
    account, name: str, *, permission=Membership.Permission.AGENT, seat=Membership.Seat.SERVICE_HUB
):
    username = name.lower().replace(" ", ".")
    return MembershipFactory(
        account=account,
        user__email=f"{username}@{account.subdomain}.example",
        user__full_name=name,
        username=username,
        permission=permission,
        seat=seat,
    )


def make_team(account, name: str, *members):
    team = TeamFactory(account=account, name=name)
    team.members.add(*members)
    return team


def access_list(inbox: Inbox) -> tuple[str, set[int], set[int]]:
    """The inbox's access as saved: (access, member ids, team ids)."""
    with scopes_disabled():
        inbox.refresh_from_db(fields=["access"])
        grants = list(InboxAccess.objects.filter(inbox=inbox))
    return (
        inbox.access,
        {g.member_id for g in grants if g.member_id},
        {g.team_id for g in grants if g.team_id},
    )


def audit_actions(account) -> list[str]:
    with scopes_disabled():
        return list(
            AuditEntry.objects.filter(account=account).order_by("pk").values_list("action", flat=True)
        )


def inbox_names(account) -> list[str]:
    with scopes_disabled():
        return sorted(Inbox.objects.filter(account=account).values_list("name", flat=True))
