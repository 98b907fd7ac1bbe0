"""The Automation tab (C10, D1–D5): switch, assign to, member-and-team picker, availability."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from inboxhub.models import AuditEntry, Membership
from routing.models import AssignmentRule
from routing.selectors import assignment_rule_for
from routing.services import update_assignment_rule
from tests.factories import MembershipFactory, TeamFactory
from tests.routing.helpers import controls, is_checked, is_disabled


@pytest.fixture
def inbox(admin):
    with scope(account=admin.account):
        return admin.account.inboxes.get(is_default=True)


@pytest.fixture
def paid(admin) -> Membership:
    return MembershipFactory(
        account=admin.account,
        user__full_name="Paula Paid",
        user__email="paula@alpha.example",
        username="paula",
    )


@pytest.fixture
def free(admin) -> Membership:
    return MembershipFactory(
        account=admin.account,
        user__full_name="Fred Free",
        user__email="fred@alpha.example",
        username="fred",
        seat=Membership.Seat.FREE,
    )


@pytest.fixture
def free_admin(admin) -> Membership:
    return MembershipFactory(
        account=admin.account,
        user__full_name="Fiona Free",
        user__email="fiona@alpha.example",
        username="fiona",
        seat=Membership.Seat.FREE,
        permission=Membership.Permission.ACCOUNT_ADMIN,
    )


@pytest.fixture
def team(admin, paid, free):
    team = TeamFactory(account=admin.account, name="Support")
    team.members.add(paid, free)
    return team


def url(inbox) -> str:
    return reverse("automation:edit", args=[inbox.account.subdomain, inbox.pk])


def saved_rule(inbox) -> AssignmentRule | None:
    with scopes_disabled():
        return AssignmentRule.objects.filter(inbox=inbox).prefetch_related("members", "teams").first()


def post(client, inbox, **data):
    form = {"assign_to": "specific", "only_available": "on"}
    form.update(data)
    return client.post(url(inbox), {k: v for k, v in form.items() if v is not None})


def test_a_new_inbox_shows_assignment_off_with_only_available_checked(client, admin, inbox):
    client.force_login(admin.user)

    response = client.get(url(inbox))

    assert response.status_code == 200
    html = response.text
    assert controls(html)["id_enabled"]["role"] == "switch"
    assert not is_checked(html, "id_enabled")
    assert is_checked(html, "id_only_available")
    assert saved_rule(inbox) is None


def test_saving_turns_assignment_on_for_the_picked_members_and_teams(client, admin, inbox, paid, team):
    client.force_login(admin.user)

    response = post(client, inbox, enabled="on", members=[paid.pk], teams=[team.pk], only_available=None)

    assert response.status_code == 302
    rule = saved_rule(inbox)
    assert rule.enabled is True
    assert rule.assign_to == "specific"
    assert list(rule.members.all()) == [paid]
    assert list(rule.teams.all()) == [team]
    assert rule.only_available is False
    page = client.get(response["Location"])
    assert "Automatic assignment for Inbox was saved." in page.text
    assert is_checked(page.text, "id_enabled")
    assert is_checked(page.text, f"member-{paid.pk}")
    assert is_checked(page.text, f"team-{team.pk}")
    assert not is_checked(page.text, "id_only_available")


def test_contact_owner_is_kept(client, admin, inbox):
    client.force_login(admin.user)

    post(client, inbox, enabled="on", assign_to="contact_owner")

    rule = saved_rule(inbox)
    assert (rule.enabled, rule.assign_to, rule.only_available) == (True, "contact_owner", True)


def test_turning_assignment_off_is_kept(client, admin, inbox, paid):
    client.force_login(admin.user)
    post(client, inbox, enabled="on", members=[paid.pk])

    post(client, inbox, members=[paid.pk])

    assert saved_rule(inbox).enabled is False


def test_turning_it_on_with_nobody_picked_is_refused(client, admin, inbox):
    client.force_login(admin.user)

    response = post(client, inbox, enabled="on")

    assert response.status_code == 400
    assert "Pick at least one member or team to assign conversations to." in response.text
    assert saved_rule(inbox) is None


def test_free_members_are_listed_but_not_selectable_with_the_reason(client, admin, inbox, paid, free):
    client.force_login(admin.user)

    html = client.get(url(inbox)).text

    assert is_disabled(html, f"member-{free.pk}")
    assert controls(html)[f"member-{free.pk}"]["aria-describedby"] == f"member-{free.pk}-note"
    assert f'id="member-{free.pk}-note">Free seat: can&#x27;t be assigned automatically</span>' in html
    assert not is_disabled(html, f"member-{paid.pk}")


def test_a_team_shows_how_many_paid_members_it_contributes(client, admin, inbox, team):
    client.force_login(admin.user)

    html = client.get(url(inbox)).text

    assert "1 of 2 members can be assigned" in html


def test_a_team_of_free_members_says_it_contributes_no_one(client, admin, inbox, free):
    TeamFactory(account=admin.account, name="Interns").members.add(free)
    client.force_login(admin.user)

    html = client.get(url(inbox)).text

    assert "No paid-seat members: contributes no one" in html


def test_a_free_members_id_in_the_post_is_refused_and_nothing_is_saved(client, admin, inbox, paid, free):
    client.force_login(admin.user)

    response = post(client, inbox, enabled="on", members=[paid.pk, free.pk])

    assert response.status_code == 400
    assert "Fred Free has a free seat and can&#x27;t be assigned automatically." in response.text
    assert saved_rule(inbox) is None


def test_another_accounts_member_id_answers_404_and_nothing_is_saved(client, admin, inbox, outsider):
    client.force_login(admin.user)

    response = post(client, inbox, enabled="on", members=[outsider.pk])
    missing = post(client, inbox, enabled="on", members=[10**9])

    assert response.status_code == missing.status_code == 404  # the same answer as for no such member
    assert saved_rule(inbox) is None


def test_another_accounts_team_id_answers_404_and_nothing_is_saved(client, admin, inbox, paid, outsider):
    other_team = TeamFactory(account=outsider.account, name="Theirs")
    client.force_login(admin.user)

    response = post(client, inbox, enabled="on", members=[paid.pk], teams=[other_team.pk])

    assert response.status_code == 404
    assert saved_rule(inbox) is None


def test_extra_fields_in_the_post_are_ignored(client, admin, inbox, paid, outsider):
    client.force_login(admin.user)

    post(client, inbox, enabled="on", members=[paid.pk], account=outsider.account.pk, updated_at="2001-01-01")

    rule = saved_rule(inbox)
    assert (rule.account_id, rule.inbox_id) == (admin.account.pk, inbox.pk)
    assert rule.updated_at.year > 2001


def test_a_free_seat_admin_sees_the_whole_tab_read_only_with_the_reason(client, inbox, free_admin, paid):
    client.force_login(free_admin.user)

    response = client.get(url(inbox))

    assert response.status_code == 200
    html = response.text
    assert "You can view these settings, but not change them" in html
    assert "Only a member with a paid seat can turn on or change automatic assignment." in html
    enabled = [c["id"] for c in controls(html).values() if "disabled" not in c and c["tag"] != "select"]
    # Searching the list changes nothing; the header's switch is the member's own availability (D9).
    assert enabled == ["availability-available", "availability-away", "assignee-search"]
    assert is_disabled(html, "id_enabled") and is_disabled(html, f"member-{paid.pk}")
    assert is_disabled(html, "id_only_available") and is_disabled(html, "id_assign_to_0")


def test_a_free_seat_admins_post_is_refused_with_403_and_the_reason(client, inbox, free_admin, paid):
    client.force_login(free_admin.user)

    response = post(client, inbox, enabled="on", members=[paid.pk])

    assert response.status_code == 403
    assert "Only a member with a paid seat can turn on or change automatic assignment." in response.text
    assert saved_rule(inbox) is None


def test_an_agent_gets_403(client, agent, inbox, paid):
    client.force_login(agent.user)

    assert client.get(url(inbox)).status_code == 403
    assert post(client, inbox, enabled="on", members=[paid.pk]).status_code == 403
    assert saved_rule(inbox) is None


def test_an_outsider_gets_404_and_the_rule_stays_as_it_was(client, admin, inbox, paid, outsider):
    with scope(account=admin.account):
        update_assignment_rule(
            assignment_rule_for(inbox),
            enabled=True,
            assign_to="specific",
            members=[paid],
            teams=[],
            only_available=True,
            by=admin,
        )
    client.force_login(outsider.user)

    assert client.get(url(inbox)).status_code == 404
    assert post(client, inbox, members=[]).status_code == 404
    rule = saved_rule(inbox)
    assert rule.enabled is True
    assert list(rule.members.all()) == [paid]


def test_the_service_writes_an_audit_row(admin, inbox, paid, team):
    with scope(account=admin.account):
        update_assignment_rule(
            assignment_rule_for(inbox),
            enabled=True,
            assign_to="specific",
            members=[paid],
            teams=[team],
            only_available=False,
            by=admin,
        )
        entry = AuditEntry.objects.filter(account=admin.account, action="assignment_rule_updated").get()
    assert entry.actor == admin
    assert entry.details == {
        "enabled": True,
        "assign_to": "specific",
        "members": [paid.pk],
        "teams": [team.pk],
        "only_available": False,
        "capacity": None,
    }


def test_the_service_refuses_a_free_seat_editor(inbox, free_admin, paid):
    with scope(account=free_admin.account), pytest.raises(PermissionDenied):
        update_assignment_rule(
            assignment_rule_for(inbox),
            enabled=True,
            assign_to="specific",
            members=[paid],
            teams=[],
            only_available=True,
            by=free_admin,
        )


def test_the_service_refuses_a_free_member(admin, inbox, free):
    with scope(account=admin.account), pytest.raises(ValidationError) as caught:
        update_assignment_rule(
            assignment_rule_for(inbox),
            enabled=True,
            assign_to="specific",
            members=[free],
            teams=[],
            only_available=True,
            by=admin,
        )
    assert caught.value.message_dict == {
        "members": ["Fred Free has a free seat and can't be assigned automatically."]
    }


def test_saving_twice_keeps_one_rule_per_inbox(admin, inbox, paid):
    with scope(account=admin.account):
        for enabled in (True, False):
            update_assignment_rule(
                assignment_rule_for(inbox),
                enabled=enabled,
                assign_to="specific",
                members=[paid],
                teams=[],
                only_available=True,
                by=admin,
            )
        assert AssignmentRule.objects.filter(inbox=inbox).count() == 1
