"""Settings › Teams: super admins create, rename, delete teams and choose their members (A4)."""

import pytest
from django_scopes import scopes_disabled

from inboxhub.models import AuditEntry, Team
from tests.factories import MembershipFactory, TeamFactory

TEAMS = "/a/alpha/settings/teams/"
DUPLICATE = "A team with this name already exists."


def edit_url(team) -> str:
    return f"/a/{team.account.subdomain}/settings/teams/{team.pk}/"


def team_named(account, name: str) -> Team | None:
    with scopes_disabled():
        return Team.objects.filter(account=account, name=name).first()


def member_ids(team) -> set[int]:
    with scopes_disabled():
        return set(team.members.values_list("pk", flat=True))


def last_audit(account) -> AuditEntry:
    with scopes_disabled():
        return AuditEntry.objects.filter(account=account).latest("pk")


@pytest.fixture
def signed_in(client, admin):
    client.force_login(admin.user)
    return client


@pytest.fixture
def support(admin, agent):
    team = TeamFactory(account=admin.account, name="Support")
    team.members.add(agent)
    return team


def test_a_super_admin_creates_a_team_with_members(signed_in, admin, agent):
    response = signed_in.post(TEAMS, {"name": "  Billing  ", "members": [agent.pk, admin.pk]}, follow=True)

    team = team_named(admin.account, "Billing")
    assert member_ids(team) == {agent.pk, admin.pk}
    assert "Team “Billing” was created." in response.text
    assert f'id="team-{team.pk}"' in response.text


def test_creating_a_team_writes_an_audit_entry(signed_in, admin, agent):
    signed_in.post(TEAMS, {"name": "Billing", "members": [agent.pk]})

    entry = last_audit(admin.account)
    assert (entry.action, entry.actor_id, entry.details) == (
        "team_created",
        admin.pk,
        {"members": [agent.pk]},
    )


def test_a_team_needs_a_name(signed_in, admin, snapshot):
    before = snapshot()

    response = signed_in.post(TEAMS, {"name": "   "})

    assert response.status_code == 400
    assert "This field is required." in response.text
    assert snapshot() == before


def test_a_team_name_taken_in_another_case_is_refused(signed_in, support, snapshot):
    before = snapshot()

    response = signed_in.post(TEAMS, {"name": "SUPPORT"})

    assert response.status_code == 400
    assert DUPLICATE in response.text
    assert snapshot() == before


def test_the_same_team_name_may_exist_in_another_account(signed_in, admin, outsider):
    TeamFactory(account=outsider.account, name="Billing")

    signed_in.post(TEAMS, {"name": "Billing"})

    assert team_named(admin.account, "Billing") is not None


def test_a_super_admin_renames_a_team_and_changes_its_members(signed_in, admin, agent, support):
    response = signed_in.post(
        edit_url(support), {"name": "Customer care", "members": [admin.pk]}, follow=True
    )

    support.refresh_from_db()
    assert support.name == "Customer care"
    assert member_ids(support) == {admin.pk}
    assert "Team “Customer care” was saved." in response.text
    entry = last_audit(admin.account)
    assert (entry.action, entry.details) == ("team_updated", {"name": "Customer care", "members": [admin.pk]})


def test_a_team_can_keep_its_name_in_another_case(signed_in, support):
    response = signed_in.post(edit_url(support), {"name": "SUPPORT"})

    assert response.status_code == 302
    support.refresh_from_db()
    assert support.name == "SUPPORT"


def test_renaming_a_team_to_another_teams_name_is_refused(signed_in, admin, support, snapshot):
    billing = TeamFactory(account=admin.account, name="Billing")
    before = snapshot()

    response = signed_in.post(edit_url(billing), {"name": "support"})

    assert response.status_code == 400
    assert DUPLICATE in response.text
    assert snapshot() == before


def test_removing_every_member_leaves_an_empty_team(signed_in, support):
    signed_in.post(edit_url(support), {"name": "Support"})

    assert member_ids(support) == set()


def test_a_super_admin_deletes_a_team_and_its_members_stay(signed_in, admin, agent, support):
    response = signed_in.post(f"{edit_url(support)}delete/", follow=True)

    assert "Team “Support” was deleted." in response.text
    assert team_named(admin.account, "Support") is None
    with scopes_disabled():
        agent.refresh_from_db()
    assert last_audit(admin.account).action == "team_deleted"


def test_deleting_a_team_by_get_is_refused(signed_in, support):
    assert signed_in.get(f"{edit_url(support)}delete/").status_code == 405
    assert team_named(support.account, "Support") is not None


def test_creating_a_team_with_another_accounts_member_is_refused_and_nothing_saved(
    signed_in, admin, outsider, snapshot
):
    before = snapshot()

    response = signed_in.post(TEAMS, {"name": "Mixed", "members": [outsider.pk]})

    assert response.status_code == 400
    assert f"Select a valid choice. {outsider.pk} is not one of the available choices." in response.text
    assert snapshot() == before


def test_adding_another_accounts_member_to_a_team_is_refused_and_nothing_saved(
    signed_in, agent, outsider, support, snapshot
):
    before = snapshot()

    response = signed_in.post(edit_url(support), {"name": "Renamed", "members": [agent.pk, outsider.pk]})

    assert response.status_code == 400
    assert f"Select a valid choice. {outsider.pk} is not one of the available choices." in response.text
    assert snapshot() == before


def test_a_team_form_lists_only_the_accounts_members(signed_in, admin, agent, outsider, support):
    response = signed_in.get(edit_url(support))

    assert "bob@alpha.example" in response.text
    assert "charlie@bravo.example" not in response.text


def test_an_account_field_posted_with_a_team_is_ignored(signed_in, admin, outsider):
    signed_in.post(
        TEAMS, {"name": "Billing", "account": outsider.account.pk, "account_id": outsider.account.pk}
    )

    assert team_named(admin.account, "Billing") is not None
    assert team_named(outsider.account, "Billing") is None


def test_an_outsider_gets_404_on_a_team_and_nothing_changes(client, outsider, support, snapshot):
    client.force_login(outsider.user)
    before = snapshot()

    assert client.get(edit_url(support)).status_code == 404
    assert client.post(edit_url(support), {"name": "Taken", "members": [outsider.pk]}).status_code == 404
    assert client.post(f"{edit_url(support)}delete/").status_code == 404
    assert client.post(TEAMS, {"name": "Planted"}).status_code == 404
    assert snapshot() == before


def test_an_outsider_cannot_reach_a_team_through_their_own_account(client, outsider, support, snapshot):
    client.force_login(outsider.user)
    before = snapshot()

    assert client.get(f"/a/bravo/settings/teams/{support.pk}/").status_code == 404
    assert client.post(f"/a/bravo/settings/teams/{support.pk}/delete/").status_code == 404
    assert snapshot() == before


def test_the_teams_page_takes_the_same_queries_however_many_teams(
    signed_in, admin, django_assert_num_queries
):
    signed_in.get(TEAMS)

    def page_queries() -> int:
        with django_assert_num_queries(9) as captured:
            assert signed_in.get(TEAMS).status_code == 200
        return len(captured.captured_queries)

    TeamFactory(account=admin.account).members.add(MembershipFactory(account=admin.account))
    few = page_queries()
    for _ in range(5):
        TeamFactory(account=admin.account).members.add(
            *(MembershipFactory(account=admin.account) for _ in range(3))
        )

    assert page_queries() == few
