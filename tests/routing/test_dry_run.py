"""The Automation tab's limit per member and *Try these rules*: a replay that changes nothing (D7, D8)."""

import pytest
from django_scopes import scopes_disabled

from inboxes.models import Contact, Conversation
from inboxhub.models import AuditEntry, Membership
from routing.models import AssignmentDecision
from tests.factories import MembershipFactory
from tests.routing.test_automation_settings import post, saved_rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox(admin):
    with scopes_disabled():
        return admin.account.inboxes.get(is_default=True)


@pytest.fixture
def agents(admin):
    return [
        MembershipFactory(account=admin.account, user__full_name=name, username=name.split()[0].lower())
        for name in ("Ada Lovelace", "Ben Okafor")
    ]


@pytest.fixture
def three_conversations(admin, inbox):
    with scopes_disabled():
        contact = Contact.objects.create(account=admin.account, email="carol@customer.example", name="Carol")
        return [
            Conversation.objects.create(
                account=admin.account, inbox=inbox, contact=contact, subject=f"Order {n}"
            )
            for n in range(3)
        ]


def test_the_limit_per_member_is_saved(client, admin, inbox, agents):
    client.force_login(admin.user)
    post(client, inbox, enabled="on", members=[agents[0].pk], capacity="5")
    assert saved_rule(inbox).capacity == 5


@pytest.mark.parametrize("capacity", ["0", "1000", "-1"])
def test_a_limit_outside_1_to_999_is_refused_and_nothing_saved(client, admin, inbox, agents, capacity):
    client.force_login(admin.user)
    response = post(client, inbox, enabled="on", members=[agents[0].pk], capacity=capacity)
    assert response.status_code == 400
    assert "Enter a number from 1 to 999, or leave it empty for no limit." in response.text
    assert saved_rule(inbox) is None


def test_trying_the_rules_shows_who_would_get_each_conversation_and_saves_nothing(
    client,
    admin,
    inbox,
    agents,
    three_conversations,
):
    client.force_login(admin.user)
    response = post(client, inbox, enabled="on", members=[a.pk for a in agents], action="try")

    assert response.status_code == 200
    text = response.text
    assert "If these rules had been on" in text and "The last 3 conversations" in text
    # Fair: Ada (older member) first, then Ben, then Ada again with the fewest open.
    assert text.index("Order 0") < text.index("Order 1") < text.index("Order 2")
    assert text.count("Assigned to Ada Lovelace: available, 0 open, fewest of 2 candidates") == 1
    assert text.count("Assigned to Ben Okafor: available, 0 open, fewest of 2 candidates") == 1
    assert text.count("Assigned to Ada Lovelace: available, 1 open, fewest of 2 candidates") == 1
    assert saved_rule(inbox) is None
    with scopes_disabled():
        assert not Conversation.objects.filter(assignee__isnull=False).exists()
        assert not AssignmentDecision.objects.exists()
        assert not AuditEntry.objects.filter(action="assignment_rule_updated").exists()


def test_trying_the_rules_weighs_availability_as_it_is_now(client, admin, inbox, agents, three_conversations):
    with scopes_disabled():
        Membership.objects.filter(pk=agents[1].pk).update(availability="away")
    client.force_login(admin.user)
    text = post(client, inbox, enabled="on", members=[a.pk for a in agents], action="try").text
    assert text.count("Ben Okafor away") == 3
    assert "Assigned to Ada Lovelace: available, 2 open, the only candidate · Ben Okafor away" in text


def test_trying_the_rules_of_an_empty_inbox_says_there_is_nothing_to_try(client, admin, inbox, agents):
    client.force_login(admin.user)
    text = post(client, inbox, enabled="on", members=[agents[0].pk], action="try").text
    assert "has no conversations to try the rules on yet" in text


def test_an_outsider_cannot_try_another_accounts_rules(client, outsider, inbox, agents, three_conversations):
    client.force_login(outsider.user)
    response = post(client, inbox, enabled="on", members=[agents[0].pk], action="try")
    assert response.status_code == 404
