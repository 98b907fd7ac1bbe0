"""A ticket mail opens is written in one statement on PostgreSQL; it reads as one the ORM writes (C11)."""

import pytest
from django_scopes import scope, scopes_disabled

from inboxes.activity import recent_activity
from inboxhub.models import AuditEntry
from tests.tickets.test_tickets import conversation_in, ingest, tickets_of, tickets_on
from tickets.models import Ticket
from tickets.services import open_ticket_for_new_conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox(admin):
    with scopes_disabled():
        return admin.account.inboxes.get(is_default=True)


def record_of(ticket: Ticket) -> tuple:
    """What members see of an opened ticket: its fields, its audit row and its conversation's activity."""
    with scopes_disabled():
        [audit] = AuditEntry.objects.filter(account=ticket.account, target=f"Ticket {ticket}")
        activity = [entry.text for entry in recent_activity(ticket.conversation)]
    fields = (ticket.pipeline_id, ticket.stage_id, ticket.priority, ticket.owner_id, ticket.closed_at)
    audit_row = (audit.action, audit.actor_id, {**audit.details, "conversation": "its own"})
    return fields, audit_row, activity


def test_a_ticket_opened_by_mail_reads_as_one_opened_for_a_conversation_by_the_orm(inbox, admin, agent):
    tickets_on(inbox, admin, stage_name="Waiting on us", priority="high", owner_mode="member", owner=agent)
    ingest(inbox)
    [by_mail] = tickets_of(admin.account)
    other = conversation_in(inbox, subject="Another order")

    with scope(account=admin.account):
        by_orm = open_ticket_for_new_conversation(other)

    assert record_of(by_mail) == record_of(by_orm)
    fields, audit_row, activity = record_of(by_mail)
    assert fields[2:4] == ("high", agent.pk)
    assert audit_row[0] == "ticket_opened" and audit_row[1] is None
    assert activity == ["InboxHub made it a ticket in Support pipeline at Waiting on us"]
    with scopes_disabled():
        [audit] = AuditEntry.objects.filter(target=f"Ticket Ticket #{by_mail.pk}")
    assert audit.details["conversation"] == by_mail.conversation_id
