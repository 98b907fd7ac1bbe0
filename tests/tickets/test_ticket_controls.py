"""A ticket's priority and owner, changed from its conversation's page (H4, B6, A2)."""

import html

import pytest
from django.urls import reverse

from tests.factories import MembershipFactory
from tests.inboxes.helpers import default_inbox
from tests.tickets.test_tickets import (
    conversation_in,
    refreshed,
    restrict_to,
    stage,
    support,  # noqa: F401  (a fixture)
    thread_url,
    ticket_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(admin, support):  # noqa: F811  (the fixture imported above)
    return ticket_for(conversation_in(default_inbox(admin.account)), support, stage(support, "New"))


def priority_url(ticket) -> str:
    return reverse("tickets:priority", args=[ticket.account.subdomain, ticket.pk])


def owner_url(ticket) -> str:
    return reverse("tickets:owner", args=[ticket.account.subdomain, ticket.pk])


def shown(response) -> str:
    return html.unescape(response.text)


def test_the_page_offers_priority_and_owner_with_the_current_values_chosen(client, admin, agent, ticket):
    client.force_login(agent.user)

    page = shown(client.get(thread_url(ticket.conversation)))

    assert '<option value="medium" selected>Medium</option>' in page
    assert '<option value="">No owner</option>' in page
    assert f'<option value="{agent.pk}">Bob Agent</option>' in page
    assert 'name="priority"' in page and 'name="owner"' in page


def test_setting_the_priority_shows_it_and_an_activity_entry(client, admin, agent, ticket):
    client.force_login(agent.user)

    response = client.post(priority_url(ticket), {"priority": "urgent"}, follow=True)

    assert refreshed(ticket).priority == "urgent"
    page = shown(response)
    assert "Priority set to Urgent." in page
    assert '<option value="urgent" selected>Urgent</option>' in page
    assert "Bob Agent set its ticket's priority to Urgent (was Medium)" in page


def test_giving_the_ticket_to_a_member_and_then_to_nobody(client, admin, agent, ticket):
    client.force_login(admin.user)

    page = shown(client.post(owner_url(ticket), {"owner": agent.pk}, follow=True))
    assert refreshed(ticket).owner == agent
    assert "Bob Agent owns this ticket now." in page
    assert f'<option value="{agent.pk}" selected>Bob Agent</option>' in page
    assert "Alice Admin gave its ticket to Bob Agent" in page

    page = shown(client.post(owner_url(ticket), {"owner": ""}, follow=True))
    assert refreshed(ticket).owner is None
    assert "This ticket has no owner now." in page
    assert "Alice Admin left its ticket without an owner" in page


def test_a_priority_that_is_not_one_is_refused_in_words_and_nothing_changes(client, admin, ticket):
    client.force_login(admin.user)

    page = shown(client.post(priority_url(ticket), {"priority": "whenever"}, follow=True))

    assert "Choose one of the priorities." in page
    assert refreshed(ticket).priority == "medium"


def test_a_member_who_has_not_joined_is_neither_offered_nor_accepted(client, admin, ticket):
    invited = MembershipFactory(account=admin.account, user__full_name="Ivy Invited", joined_at=None)
    client.force_login(admin.user)

    page = shown(client.get(thread_url(ticket.conversation)))
    response = client.post(owner_url(ticket), {"owner": invited.pk})

    assert "Ivy Invited" not in page
    assert response.status_code == 404
    assert refreshed(ticket).owner is None


def test_another_accounts_member_answers_404_and_the_owner_stays(client, admin, agent, outsider, ticket):
    client.force_login(admin.user)
    client.post(owner_url(ticket), {"owner": agent.pk})

    response = client.post(owner_url(ticket), {"owner": outsider.pk})

    assert response.status_code == 404
    assert refreshed(ticket).owner == agent


def test_an_outsider_gets_404_for_another_accounts_ticket_and_it_stays(client, outsider, ticket):
    client.force_login(outsider.user)

    for url, data in (
        (reverse("tickets:priority", args=[outsider.account.subdomain, ticket.pk]), {"priority": "low"}),
        (reverse("tickets:owner", args=[outsider.account.subdomain, ticket.pk]), {"owner": outsider.pk}),
    ):
        assert client.post(url, data).status_code == 404
    assert refreshed(ticket).priority == "medium" and refreshed(ticket).owner is None


def test_an_account_admin_off_a_restricted_inboxs_list_sees_the_values_but_no_control(
    client, admin, agent, ticket
):
    lead = MembershipFactory(account=admin.account, permission="account_admin")
    restrict_to(ticket.conversation.inbox, admin, agent)
    client.force_login(lead.user)

    page = shown(client.get(thread_url(ticket.conversation)))
    responses = [
        client.post(priority_url(ticket), {"priority": "low"}),
        client.post(owner_url(ticket), {"owner": lead.pk}),
    ]

    assert "<dt>Priority</dt><dd>Medium</dd>" in page and "<dt>Owner</dt><dd>No owner</dd>" in page
    assert 'name="priority"' not in page
    assert [response.status_code for response in responses] == [403, 403]
    assert refreshed(ticket).priority == "medium" and refreshed(ticket).owner is None


def test_an_agent_off_a_restricted_inboxs_list_gets_404(client, admin, agent, ticket):
    restrict_to(ticket.conversation.inbox, admin, admin)
    client.force_login(agent.user)

    assert client.post(priority_url(ticket), {"priority": "low"}).status_code == 404
    assert refreshed(ticket).priority == "medium"
