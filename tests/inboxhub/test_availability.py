"""The availability switch in the header, and availability on the members page (D9)."""

import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django_scopes import scopes_disabled

from inboxhub.models import AuditEntry, AvailabilityChange, Membership
from inboxhub.services import set_availability
from tests.factories import MembershipFactory, TeamFactory

SWITCH_URL = "/a/alpha/availability/"
MEMBERS = "/a/alpha/settings/members/"
HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/a/alpha/inbox/"}
NOON = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)


def availability(member: Membership) -> str:
    with scopes_disabled():
        return Membership.objects.get(pk=member.pk).availability


def history(member: Membership) -> list[tuple]:
    with scopes_disabled():
        return list(
            AvailabilityChange.objects.filter(member=member)
            .order_by("pk")
            .values_list("availability", "changed_by_id", "created_at")
        )


def audit(account) -> list[tuple]:
    with scopes_disabled():
        return list(
            AuditEntry.objects.filter(account=account, action="availability_changed")
            .order_by("pk")
            .values_list("actor_id", "details", "created_at")
        )


def member_row(response, member: Membership) -> str:
    return re.search(rf'<tr id="member-{member.pk}">.*?</tr>', response.text, re.S)[0]


@pytest.fixture
def as_agent(client, agent):
    client.force_login(agent.user)
    return client


@pytest.fixture
def no_backlog(monkeypatch) -> list:
    """Who the backlog hook was called for (the real one belongs to routing)."""
    calls = []
    monkeypatch.setattr("inboxhub.views.availability.assign_backlog_for", calls.append)
    return calls


def test_every_account_page_shows_the_switch_with_the_members_state(as_agent):
    response = as_agent.get("/a/alpha/inbox/")

    switch = re.search(r'<form id="availability-switch".*?</form>', response.text, re.S)[0]
    assert 'hx-post="/a/alpha/availability/"' in switch
    assert re.search(r'value="available" aria-pressed="true"', switch)
    assert re.search(r'value="away" aria-pressed="false"', switch)
    assert 'name="next" value="/a/alpha/inbox/"' in switch


def test_a_member_sets_themselves_away_and_the_swapped_switch_says_so(as_agent, agent, no_backlog):
    response = as_agent.post(SWITCH_URL, {"availability": "away", "next": "/a/alpha/inbox/"}, headers=HTMX)

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<form id="availability-switch"')
    assert "<html" not in response.text
    assert re.search(r'value="away" aria-pressed="true"', response.text)
    assert re.search(r'value="available" aria-pressed="false"', response.text)
    status = (
        '<span class="visually-hidden" aria-live="polite" id="availability-status">You are now away.</span>'
    )
    assert status in response.text
    assert 'name="next" value="/a/alpha/inbox/"' in response.text
    assert response["Vary"] and "HX-Request" in response["Vary"]
    assert availability(agent) == "away"
    assert no_backlog == []


def test_setting_the_same_state_again_changes_nothing(as_agent, agent, no_backlog):
    response = as_agent.post(SWITCH_URL, {"availability": "available"}, headers=HTMX)

    assert response.status_code == 200
    assert 'id="availability-status"></span>' in response.text
    assert history(agent) == []
    assert audit(agent.account) == []
    assert no_backlog == []


def test_becoming_available_again_hands_the_member_to_the_backlog_after_commit(
    as_agent, agent, no_backlog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as away_callbacks:
        as_agent.post(SWITCH_URL, {"availability": "away"}, headers=HTMX)
    with django_capture_on_commit_callbacks(execute=True) as available_callbacks:
        response = as_agent.post(SWITCH_URL, {"availability": "available"}, headers=HTMX)

    assert "You are now available." in response.text
    assert (len(away_callbacks), len(available_callbacks)) == (0, 1)
    assert [m.pk for m in no_backlog] == [agent.pk]


def test_a_plain_post_redirects_back_to_the_page(as_agent, agent, no_backlog):
    response = as_agent.post(SWITCH_URL, {"availability": "away", "next": "/a/alpha/contacts/?q=x"})

    assert response.status_code == 302
    assert response["Location"] == "/a/alpha/contacts/?q=x"
    assert availability(agent) == "away"


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", ""])
def test_a_plain_post_never_redirects_off_the_site(as_agent, next_url, no_backlog):
    response = as_agent.post(SWITCH_URL, {"availability": "away", "next": next_url})

    assert response["Location"] == "/a/alpha/inbox/"


def test_the_change_is_recorded_with_who_and_when(as_agent, agent, no_backlog):
    with time_machine.travel(NOON, tick=False):
        as_agent.post(SWITCH_URL, {"availability": "away"}, headers=HTMX)

    assert history(agent) == [("away", agent.pk, NOON)]
    assert audit(agent.account) == [(agent.pk, {"availability": "away"}, NOON)]
    with scopes_disabled():
        assert Membership.objects.get(pk=agent.pk).availability_changed_at == NOON


def test_an_unknown_value_is_refused_and_nothing_changes(as_agent, agent, snapshot, no_backlog):
    before = snapshot()

    response = as_agent.post(SWITCH_URL, {"availability": "busy"}, headers=HTMX)

    assert response.status_code == 400
    assert "Choose Available or Away." in response.text
    assert snapshot() == before


def test_an_unknown_value_in_a_plain_post_comes_back_as_a_message(as_agent, agent, no_backlog):
    response = as_agent.post(SWITCH_URL, {"availability": "", "next": "/a/alpha/inbox/"}, follow=True)

    assert '<p class="flash flash-error">Choose Available or Away.</p>' in response.text
    assert availability(agent) == "available"


def test_a_forged_member_field_is_ignored_and_only_the_poster_changes(as_agent, agent, admin, no_backlog):
    response = as_agent.post(SWITCH_URL, {"availability": "away", "member": admin.pk, "member_id": admin.pk})

    assert response.status_code == 302
    assert availability(agent) == "away"
    assert availability(admin) == "available"
    assert history(admin) == []


def test_an_admin_cannot_set_another_members_availability_through_the_service(admin, agent, unscoped):
    with pytest.raises(PermissionDenied):
        set_availability(agent, "away", by=admin)

    assert availability(agent) == "available"


def test_an_outsider_gets_404_and_nothing_changes(client, admin, outsider, snapshot, no_backlog):
    client.force_login(outsider.user)
    before = snapshot()

    response = client.post(SWITCH_URL, {"availability": "away"}, headers=HTMX)

    assert response.status_code == 404
    assert snapshot() == before


def test_get_is_refused(as_agent):
    assert as_agent.get(SWITCH_URL).status_code == 405


def test_the_members_page_shows_an_away_member_and_since_when(client, admin, agent, no_backlog):
    client.force_login(agent.user)
    with time_machine.travel(NOON, tick=False):
        client.post(SWITCH_URL, {"availability": "away"})
    client.force_login(admin.user)

    response = client.get(MEMBERS)

    row = member_row(response, agent)
    assert '<th scope="col">Availability</th>' in response.text
    assert re.search(r"</span>Away</span>", row)
    assert 'since <time datetime="2026-03-02T12:30:00+00:00">2 Mar 2026, 12:30</time>' in row
    assert re.search(
        r"</span>Available</span><span class=\"sub\">since joining</span>", member_row(response, admin)
    )


def test_the_members_page_takes_the_same_queries_for_3_and_10_members(
    client, admin, django_assert_num_queries
):
    client.force_login(admin.user)
    client.get(MEMBERS)  # the first visit remembers the account in the session

    def page_queries() -> int:
        with django_assert_num_queries(9) as captured:  # pending invitations are one more
            assert client.get(MEMBERS).status_code == 200
        return len(captured.captured_queries)

    team = TeamFactory(account=admin.account)
    away = Membership.Availability.AWAY
    team.members.add(*(MembershipFactory(account=admin.account, availability=away) for _ in range(2)))
    few = page_queries()
    team.members.add(
        *(MembershipFactory(account=admin.account, availability_changed_at=NOON) for _ in range(7))
    )

    assert page_queries() == few
