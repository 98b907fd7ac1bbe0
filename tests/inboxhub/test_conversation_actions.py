"""Working a conversation by hand: assign, reassign, unassign, close, reopen (H4, B6, B7, C11, D5)."""

import pytest
from django_scopes import scope, scopes_disabled

from inboxes.models import Contact, Conversation, Inbox, InboxAccess
from inboxhub.models import AuditEntry, Membership
from routing.models import AssignmentDecision, AssignmentRule
from tests.factories import MembershipFactory
from tickets.models import Pipeline
from tickets.services import create_ticket, move_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox(admin) -> Inbox:
    with scopes_disabled():
        return admin.account.inboxes.get(is_default=True)


@pytest.fixture
def conversation(admin, inbox) -> Conversation:
    with scopes_disabled():
        contact = Contact.objects.create(account=admin.account, email="carol@customer.example", name="Carol")
        return Conversation.objects.create(
            account=admin.account, inbox=inbox, contact=contact, subject="Help"
        )


@pytest.fixture
def fay(admin) -> Membership:
    return MembershipFactory(
        account=admin.account, user__full_name="Fay Free", username="fay", seat=Membership.Seat.FREE
    )


def url(conversation, action: str) -> str:
    return f"/a/{conversation.account.subdomain}/inbox/c/{conversation.pk}/{action}/"


def fresh(conversation) -> Conversation:
    with scopes_disabled():
        return Conversation.objects.select_related("assignee").get(pk=conversation.pk)


def test_an_agent_takes_a_conversation_with_assign_to_me(client, agent, conversation):
    client.force_login(agent.user)
    response = client.post(url(conversation, "assign"), {"to": "me"}, follow=True)
    assert "Assigned to Bob Agent." in response.text
    assert "Assigned to <strong>Bob Agent</strong>" in response.text
    assert fresh(conversation).assignee == agent
    with scopes_disabled():
        entry = AuditEntry.objects.get(action="conversation_assigned")
    assert (entry.actor, entry.details) == (agent, {"assignee": agent.pk, "previous": None})


def test_an_admin_reassigns_and_then_unassigns(client, admin, agent, conversation):
    client.force_login(admin.user)
    client.post(url(conversation, "assign"), {"assignee": agent.pk})
    assert fresh(conversation).assignee == agent
    client.post(url(conversation, "assign"), {"assignee": admin.pk})
    assert fresh(conversation).assignee == admin
    response = client.post(url(conversation, "assign"), {"assignee": ""}, follow=True)
    assert "Unassigned." in response.text and fresh(conversation).assignee is None


def test_a_free_seat_member_may_assign_an_unassigned_conversation(client, fay, agent, conversation):
    client.force_login(fay.user)
    client.post(url(conversation, "assign"), {"assignee": agent.pk})
    assert fresh(conversation).assignee == agent


def test_a_free_seat_member_cannot_reassign_and_the_page_says_why(client, fay, agent, conversation):
    with scopes_disabled():
        Conversation.objects.filter(pk=conversation.pk).update(assignee=agent)
    client.force_login(fay.user)
    response = client.post(url(conversation, "assign"), {"to": "me"})
    assert response.status_code == 403
    assert fresh(conversation).assignee == agent
    page = client.get(f"/a/alpha/inbox/c/{conversation.pk}/").text
    assert (
        "With a free seat you can assign only conversations that are unassigned or assigned to you; "
        "this one is assigned to Bob Agent." in page
    )
    assert 'id="assignee"' not in page


def test_a_member_off_a_restricted_inbox_cannot_be_the_assignee(client, admin, agent, inbox, conversation):
    with scopes_disabled():
        Inbox.objects.filter(pk=inbox.pk).update(access=Inbox.Access.SPECIFIC)
        InboxAccess.objects.create(account=admin.account, inbox=inbox, member=admin)
    client.force_login(admin.user)
    response = client.post(url(conversation, "assign"), {"assignee": agent.pk}, follow=True)
    assert "Bob Agent is not on the access list of Inbox, so cannot work on it." in response.text
    assert fresh(conversation).assignee is None


def test_an_admin_off_the_access_list_sees_the_thread_but_cannot_assign_or_close(
    client, admin, agent, inbox, conversation
):
    with scopes_disabled():
        Inbox.objects.filter(pk=inbox.pk).update(access=Inbox.Access.SPECIFIC)
        InboxAccess.objects.create(account=admin.account, inbox=inbox, member=agent)
    client.force_login(admin.user)
    page = client.get(f"/a/alpha/inbox/c/{conversation.pk}/").text
    assert "You can see it, but not reply, comment, assign, close or change tickets." in page
    assert client.post(url(conversation, "assign"), {"to": "me"}).status_code == 403
    assert client.post(url(conversation, "close")).status_code == 403
    assert (fresh(conversation).assignee, fresh(conversation).status) == (None, "open")


def test_another_accounts_member_id_answers_404_and_nothing_changes(client, admin, outsider, conversation):
    client.force_login(admin.user)
    assert client.post(url(conversation, "assign"), {"assignee": outsider.pk}).status_code == 404
    assert fresh(conversation).assignee is None


@pytest.mark.parametrize("action", ["assign", "close", "reopen"])
def test_an_outsider_gets_404_and_nothing_changes(client, outsider, conversation, action):
    client.force_login(outsider.user)
    assert client.post(url(conversation, action), {"to": "me"}).status_code == 404
    assert (fresh(conversation).assignee, fresh(conversation).status) == (None, "open")


@pytest.mark.parametrize("action", ["assign", "close", "reopen"])
def test_a_get_is_refused(client, admin, conversation, action):
    client.force_login(admin.user)
    assert client.get(url(conversation, action)).status_code == 405


def test_closing_frees_room_under_the_limit_for_a_waiting_conversation(
    client, admin, agent, inbox, conversation, django_capture_on_commit_callbacks
):
    with scopes_disabled():
        rule = AssignmentRule.objects.create(account=admin.account, inbox=inbox, enabled=True, capacity=1)
        rule.members.add(agent)
        Conversation.objects.filter(pk=conversation.pk).update(assignee=agent)
        waiting = Conversation.objects.create(
            account=admin.account, inbox=inbox, contact=conversation.contact, subject="Waiting"
        )
    client.force_login(admin.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(conversation, "close"), follow=True)
    assert "Conversation closed." in response.text and fresh(conversation).status == "closed"
    assert fresh(waiting).assignee == agent


def test_reopening_reopens_the_ticket_and_reroutes_an_assignee_now_away(
    client, admin, agent, inbox, conversation
):
    ben = MembershipFactory(account=admin.account, user__full_name="Ben Okafor", username="ben")
    with scopes_disabled():
        rule = AssignmentRule.objects.create(account=admin.account, inbox=inbox, enabled=True)
        rule.members.set([agent, ben])
        Conversation.objects.filter(pk=conversation.pk).update(assignee=agent)
    with scope(account=admin.account):
        ticket = create_ticket(fresh(conversation), by=admin)
        closed = Pipeline.objects.get(account=admin.account, is_default=True).stages.get(is_closed=True)
        move_ticket(ticket, closed, by=admin)
    with scopes_disabled():
        Membership.objects.filter(pk=agent.pk).update(availability="away")
    client.force_login(admin.user)
    response = client.post(url(conversation, "reopen"), follow=True)
    assert "Conversation reopened." in response.text
    assert (fresh(conversation).status, fresh(conversation).assignee) == ("open", ben)
    with scopes_disabled():
        ticket.refresh_from_db()
        assert (ticket.stage.name, ticket.closed_at) == ("New", None)
        assert AssignmentDecision.objects.get(trigger="reopened").chosen == ben
