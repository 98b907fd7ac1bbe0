"""B6: who sees an inbox and who may act in it, asked in one place (inboxes.permissions)."""

import pytest
from django.core.exceptions import PermissionDenied
from django_scopes import scope

from inboxes.permissions import (
    can_act_in_inbox,
    can_view_inbox,
    create_inbox_refusal,
    require_inbox_action,
    visible_inboxes,
)
from inboxhub.models import Account, Membership
from tests.factories import make_account
from tests.inboxes.inbox_settings_helpers import default_inbox_of, make_inbox, make_member, make_team

pytestmark = pytest.mark.django_db

ROLES = [
    Membership.Permission.SUPER_ADMIN,
    Membership.Permission.ACCOUNT_ADMIN,
    Membership.Permission.AGENT,
]
SEATS = [Membership.Seat.SERVICE_HUB, Membership.Seat.FREE]


def restricted_to(admin, *, person, listing: str):
    """An inbox whose list names `person` directly, through a team, or not at all (someone else)."""
    if listing == "direct":
        return make_inbox(admin, "Restricted", members=[person])
    team = make_team(admin.account, "Billing team", person) if listing == "team" else None
    if listing == "team":
        return make_inbox(admin, "Restricted", teams=[team])
    someone_else = make_member(admin.account, "Sam Someone")
    return make_inbox(admin, "Restricted", members=[someone_else])


@pytest.mark.parametrize("seat", SEATS)
@pytest.mark.parametrize("listing", ["direct", "team", "off"])
@pytest.mark.parametrize("role", ROLES)
def test_the_b6_matrix_of_viewing_and_acting(admin, role, listing, seat):
    person = make_member(admin.account, "Pat Person", permission=role, seat=seat)
    inbox = restricted_to(admin, person=person, listing=listing)
    on_list = listing != "off"
    is_admin = role != Membership.Permission.AGENT

    with scope(account=admin.account):
        assert can_act_in_inbox(person, inbox) is on_list
        assert can_view_inbox(person, inbox) is (on_list or is_admin)
        assert (inbox in visible_inboxes(person)) is (on_list or is_admin)


@pytest.mark.parametrize("seat", SEATS)
@pytest.mark.parametrize("role", ROLES)
def test_everyone_sees_and_acts_in_an_inbox_available_to_everyone(admin, role, seat):
    person = make_member(admin.account, "Pat Person", permission=role, seat=seat)
    inbox = default_inbox_of(admin.account)

    with scope(account=admin.account):
        assert can_view_inbox(person, inbox) and can_act_in_inbox(person, inbox)
        require_inbox_action(person, inbox)


def test_an_admin_off_the_list_is_refused_an_action_with_the_reason(admin):
    lee = make_member(admin.account, "Lee Lead", permission=Membership.Permission.ACCOUNT_ADMIN)
    inbox = restricted_to(admin, person=lee, listing="off")

    with scope(account=admin.account), pytest.raises(PermissionDenied) as refused:
        require_inbox_action(lee, inbox)

    assert str(refused.value) == (
        "Only the users and teams on the access list of the inbox “Restricted” can act in it. "
        "You can see it, but not reply, comment, assign, close or change tickets."
    )


def test_the_super_admin_who_restricted_an_inbox_to_others_cannot_act_in_it(admin):
    inbox = restricted_to(admin, person=admin, listing="off")

    with scope(account=admin.account):
        assert can_view_inbox(admin, inbox) is True
        assert can_act_in_inbox(admin, inbox) is False


def test_leaving_the_team_on_the_list_takes_the_access_away_at_once(admin):
    agent = make_member(admin.account, "Ada Agent")
    inbox = restricted_to(admin, person=agent, listing="team")

    with scope(account=admin.account):
        agent.teams.clear()
        assert can_view_inbox(agent, inbox) is False
        assert can_act_in_inbox(agent, inbox) is False


def test_the_visible_inboxes_of_an_agent_are_the_open_ones_and_those_listing_them(admin):
    agent = make_member(admin.account, "Ada Agent")
    other = make_member(admin.account, "Sam Someone")
    make_inbox(admin, "Mine", members=[agent])
    make_inbox(admin, "Theirs", members=[other])
    make_inbox(admin, "Open")

    with scope(account=admin.account):
        names = sorted(visible_inboxes(agent).values_list("name", flat=True))

    assert names == ["Inbox", "Mine", "Open"]


def test_asking_about_another_accounts_inbox_is_a_callers_bug(admin, outsider):
    with scope(account=admin.account), pytest.raises(AssertionError):
        can_view_inbox(admin, default_inbox_of(outsider.account))


@pytest.mark.parametrize(
    ("tier", "refused"),
    [
        (Account.Tier.FREE, True),
        (Account.Tier.STARTER, True),
        (Account.Tier.PROFESSIONAL, False),
        (Account.Tier.ENTERPRISE, False),
    ],
)
def test_only_professional_and_enterprise_accounts_may_add_a_second_inbox(tier, refused):
    owner = make_account(tier=tier)

    with scope(account=owner.account):
        refusal = create_inbox_refusal(owner.account)

    assert (refusal is not None) is refused
    if refused:
        assert refusal == (
            f"Your {owner.account.get_tier_display()} plan includes one inbox. "
            "More inboxes come with the Professional and Enterprise plans."
        )
