"""Create new inbox: name → who has access → a channel or later (E1, E2, A3), nothing half-created."""

import pytest
from django.core.exceptions import ValidationError
from django_scopes import scope, scopes_disabled

from channels_conn.models import FallbackAddress
from inboxes.models import Inbox
from inboxes.services import add_inbox
from inboxhub.models import Account
from tests.factories import make_account
from tests.inboxes.inbox_settings_helpers import (
    access_list,
    audit_actions,
    inbox_names,
    make_inbox,
    make_team,
    settings_url,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_admin(client, admin):
    client.force_login(admin.user)
    return client


def new_url(account):
    return settings_url("new", account)


def created(account, name: str) -> Inbox:
    with scopes_disabled():
        return Inbox.objects.get(account=account, name=name)


def test_the_first_step_asks_for_the_name(as_admin, admin):
    r = as_admin.get(new_url(admin.account))

    assert r.status_code == 200
    assert "<h1>Create a new inbox</h1>" in r.text
    assert 'aria-current="step"><span class="wizard-step-number" aria-hidden="true">1</span> Name' in r.text
    assert 'name="name"' in r.text


def test_a_good_name_leads_to_the_access_step_and_nothing_is_created_yet(as_admin, admin):
    r = as_admin.post(new_url(admin.account), {"step": "1", "name": "  Billing "})

    assert r.status_code == 200
    assert (
        'aria-current="step"><span class="wizard-step-number" aria-hidden="true">2</span> Who has access'
        in r.text
    )
    assert '<input type="hidden" name="name" value="Billing">' in r.text
    assert inbox_names(admin.account) == ["Inbox"]


def test_the_access_step_leads_to_the_channel_step_and_nothing_is_created_yet(as_admin, admin, agent):
    r = as_admin.post(
        new_url(admin.account), {"step": "2", "name": "Billing", "access": "specific", "members": [agent.pk]}
    )

    assert r.status_code == 200
    assert "Connect a channel later" in r.text
    assert f'<input type="hidden" name="members" value="{agent.pk}">' in r.text
    assert "Access: <strong>Bob Agent</strong>" in r.text
    assert inbox_names(admin.account) == ["Inbox"]


def test_connecting_a_channel_later_creates_the_inbox_with_its_own_fallback_address(as_admin, admin):
    r = as_admin.post(
        new_url(admin.account),
        {"step": "3", "name": "Billing", "access": "everyone", "then": "later"},
        follow=True,
    )

    inbox = created(admin.account, "Billing")
    assert r.redirect_chain[-1][0] == settings_url("detail", admin.account, inbox.pk)
    assert "The inbox “Billing” was created." in r.text
    with scopes_disabled():
        address = FallbackAddress.objects.get(channel__inbox=inbox).address
    assert address.startswith("billing@alpha.")
    assert address in r.text
    assert access_list(inbox) == ("everyone", set(), set())
    assert audit_actions(admin.account)[-1] == "inbox_created"


def test_setting_up_email_now_goes_to_the_fallback_address_editor(as_admin, admin):
    r = as_admin.post(
        new_url(admin.account), {"step": "3", "name": "Billing", "access": "everyone", "then": "fallback"}
    )

    inbox = created(admin.account, "Billing")
    assert r["Location"] == f"/a/alpha/settings/inboxes/{inbox.pk}/fallback/"


def test_the_new_inbox_keeps_the_users_and_teams_chosen(as_admin, admin, agent):
    support = make_team(admin.account, "Support", agent)

    as_admin.post(
        new_url(admin.account),
        {
            "step": "3",
            "name": "Billing",
            "access": "specific",
            "members": [admin.pk],
            "teams": [support.pk],
            "then": "later",
        },
    )

    assert access_list(created(admin.account, "Billing")) == ("specific", {admin.pk}, {support.pk})


def test_back_from_the_access_step_keeps_the_name(as_admin, admin):
    r = as_admin.post(new_url(admin.account), {"step": "2", "name": "Billing", "back": "1"})

    assert 'aria-current="step"><span class="wizard-step-number" aria-hidden="true">1</span>' in r.text
    assert 'value="Billing"' in r.text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the inbox a name."),
        ("   ", "Give the inbox a name."),
        ("x" * 101, "Inbox names are at most 100 characters."),
        ("inBOX", "Another inbox already has this name."),
    ],
    ids=["empty", "whitespace-only", "101-characters", "duplicate-other-case"],
)
def test_a_bad_name_stays_on_the_first_step_with_the_reason(as_admin, admin, name, message):
    r = as_admin.post(new_url(admin.account), {"step": "1", "name": name})

    assert r.status_code == 400
    assert message in r.text
    assert inbox_names(admin.account) == ["Inbox"]


def test_a_name_taken_meanwhile_sends_the_last_step_back_to_the_first(as_admin, admin):
    make_inbox(admin, "Billing")

    r = as_admin.post(
        new_url(admin.account), {"step": "3", "name": "billing", "access": "everyone", "then": "later"}
    )

    assert r.status_code == 400
    assert "Another inbox already has this name." in r.text
    assert inbox_names(admin.account) == ["Billing", "Inbox"]


def test_specific_access_with_nobody_stays_on_the_access_step(as_admin, admin):
    r = as_admin.post(new_url(admin.account), {"step": "2", "name": "Billing", "access": "specific"})

    assert r.status_code == 400
    assert "Choose at least one user or team, or make the inbox available to everyone." in r.text


def test_another_accounts_member_at_the_last_step_is_refused_and_nothing_is_created(
    as_admin, admin, outsider
):
    r = as_admin.post(
        new_url(admin.account),
        {"step": "3", "name": "Billing", "access": "specific", "members": [outsider.pk], "then": "later"},
    )

    assert r.status_code == 400
    assert "Choose users of this account only." in r.text
    assert inbox_names(admin.account) == ["Inbox"]


def test_another_accounts_team_at_the_last_step_is_refused_and_nothing_is_created(as_admin, admin, outsider):
    theirs = make_team(outsider.account, "Their team", outsider)

    r = as_admin.post(
        new_url(admin.account),
        {"step": "3", "name": "Billing", "access": "specific", "teams": [theirs.pk], "then": "later"},
    )

    assert r.status_code == 400
    assert inbox_names(admin.account) == ["Inbox"]


def test_extra_fields_in_the_wizard_are_ignored(as_admin, admin, outsider):
    as_admin.post(
        new_url(admin.account),
        {
            "step": "3",
            "name": "Billing",
            "access": "everyone",
            "then": "later",
            "is_default": "true",
            "account": outsider.account.pk,
        },
    )

    inbox = created(admin.account, "Billing")
    assert (inbox.is_default, inbox.account_id) == (False, admin.account.pk)


@pytest.mark.parametrize("tier", [Account.Tier.FREE, Account.Tier.STARTER])
def test_a_lower_tier_sees_the_reason_instead_of_the_wizard(client, tier):
    owner = make_account(tier=tier)
    client.force_login(owner.user)

    r = client.get(new_url(owner.account))

    assert f"Your {owner.account.get_tier_display()} plan includes one inbox." in r.text
    assert 'name="name"' not in r.text


@pytest.mark.parametrize("tier", [Account.Tier.FREE, Account.Tier.STARTER])
def test_a_crafted_post_from_a_lower_tier_is_refused_and_nothing_is_created(client, tier):
    owner = make_account(tier=tier)
    client.force_login(owner.user)

    r = client.post(
        new_url(owner.account), {"step": "3", "name": "Second", "access": "everyone", "then": "later"}
    )

    assert r.status_code == 403
    assert "plan includes one inbox" in r.text
    assert inbox_names(owner.account) == ["Inbox"]
    with scopes_disabled():
        assert FallbackAddress.objects.filter(account=owner.account).count() == 1


def test_the_service_refuses_a_second_inbox_on_the_free_tier():
    owner = make_account(tier=Account.Tier.FREE)

    with scope(account=owner.account), pytest.raises(ValidationError):
        add_inbox(owner.account, name="Second", access="everyone", by=owner)
    assert inbox_names(owner.account) == ["Inbox"]


def test_an_agent_gets_403_on_the_wizard_and_nothing_is_created(client, agent):
    client.force_login(agent.user)

    assert client.get(new_url(agent.account)).status_code == 403
    r = client.post(
        new_url(agent.account), {"step": "3", "name": "Mine", "access": "everyone", "then": "later"}
    )
    assert r.status_code == 403
    assert inbox_names(agent.account) == ["Inbox"]


def test_an_outsider_gets_404_and_nothing_is_created(client, admin, outsider):
    client.force_login(outsider.user)

    r = client.post(
        new_url(admin.account), {"step": "3", "name": "Mine", "access": "everyone", "then": "later"}
    )

    assert r.status_code == 404
    assert inbox_names(admin.account) == ["Inbox"]
    assert inbox_names(outsider.account) == ["Inbox"]
