"""State changes for pipelines, stages, ticket defaults and tickets."""

import json

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from inboxes.activity import event, name_of, record_event
from inboxes.locking import save_inbox_settings
from inboxes.models import Conversation, ConversationEvent
from inboxes.permissions import ConversationAction, require_conversation_action, require_inbox_action
from inboxes.services import set_conversation_status
from inboxhub.audit import record_change
from inboxhub.lib.db import lock_row
from inboxhub.models import Account, AuditEntry, Membership
from inboxhub.permissions import assert_same_account, require
from routing.backlog import assign_backlog
from routing.services import route_reopened_conversation
from tickets.models import Pipeline, Stage, Ticket, TicketDefaults
from tickets.selectors import ticket_defaults_for

DEFAULT_STAGES = [("New", False), ("Waiting on contact", False), ("Waiting on us", False), ("Closed", True)]


@transaction.atomic
def create_default_pipeline(account: Account) -> Pipeline:
    """Create the "Support pipeline" with its four stages (A1)."""
    pipeline = Pipeline.objects.create(account=account, name="Support pipeline", is_default=True)
    Stage.objects.bulk_create(
        Stage(account=account, pipeline=pipeline, name=name, position=i, is_closed=closed)
        for i, (name, closed) in enumerate(DEFAULT_STAGES)
    )
    return pipeline


@transaction.atomic
def update_ticket_defaults(
    defaults: TicketDefaults,
    *,
    create_tickets: bool,
    pipeline: Pipeline | None,
    stage: Stage | None,
    priority: str,
    owner_mode: str,
    owner: Membership | None,
    by: Membership,
) -> TicketDefaults:
    """Choose whether incoming conversations become tickets, and their pipeline, stage, priority, owner (C11).

    `defaults` may be unsaved (an inbox whose tab was never saved): it is created here.
    """
    for obj in (defaults, pipeline, stage, owner):
        if obj is not None:
            assert obj.account_id == by.account_id, "member and object in different accounts"
    require(by, "manage_inboxes")
    if pipeline is None:
        raise ValidationError({"pipeline": "Choose the pipeline new tickets start in."})
    if stage is None:
        raise ValidationError({"stage": "Choose the stage new tickets start at."})
    if stage.pipeline_id != pipeline.pk:
        message = (
            f"“{stage.name}” is not a stage of the pipeline “{pipeline.name}”. Choose one of its stages."
        )
        raise ValidationError({"stage": message})
    if priority not in TicketDefaults.Priority.values:
        raise ValidationError({"priority": "Choose a priority."})
    if owner_mode not in TicketDefaults.OwnerMode.values:
        raise ValidationError({"owner_mode": "Choose who owns new tickets."})
    if owner_mode == TicketDefaults.OwnerMode.MEMBER and owner is None:
        raise ValidationError({"owner": "Choose the member who owns new tickets."})
    if owner_mode != TicketDefaults.OwnerMode.MEMBER:
        owner = None
    defaults = save_inbox_settings(
        TicketDefaults,
        account_id=defaults.account_id,
        inbox_id=defaults.inbox_id,
        create_tickets=create_tickets,
        pipeline=pipeline,
        stage=stage,
        priority=priority,
        owner_mode=owner_mode,
        owner=owner,
    )
    record_change(
        by,
        defaults,
        "ticket_defaults_updated",
        create_tickets=create_tickets,
        pipeline=pipeline.pk,
        stage=stage.pk,
        priority=priority,
        owner_mode=owner_mode,
        owner=owner.pk if owner else None,
    )
    return defaults


# --- tickets (C11, H4) ---


def _owner_by_defaults(defaults: TicketDefaults, conversation: Conversation) -> Membership | None:
    """The new ticket's owner: the conversation's, the chosen member, or nobody (C11)."""
    if defaults.owner_mode == TicketDefaults.OwnerMode.CONVERSATION_OWNER:
        return conversation.assignee
    if defaults.owner_mode == TicketDefaults.OwnerMode.MEMBER:
        return defaults.owner
    return None


def _ticket_fields(conversation: Conversation, pipeline: Pipeline, stage: Stage, defaults: TicketDefaults):
    now = timezone.now()
    return {
        "pipeline": pipeline,
        "stage": stage,
        "priority": defaults.priority,
        "owner": _owner_by_defaults(defaults, conversation),
        "created_at": now,
        "updated_at": now,
        "closed_at": now if stage.is_closed else None,
    }


def _open_ticket(conversation: Conversation, pipeline: Pipeline, stage: Stage, defaults: TicketDefaults):
    """The conversation's ticket, created when it has none; (ticket, created)."""
    # get_or_create on the one-to-one key: a retried task or a second click finds the first ticket.
    return Ticket.objects.get_or_create(
        account_id=conversation.account_id,
        conversation=conversation,
        defaults=_ticket_fields(conversation, pipeline, stage, defaults),
    )


def _new_ticket(conversation: Conversation, pipeline: Pipeline, stage: Stage, defaults: TicketDefaults):
    """The ticket of a conversation this transaction created: one INSERT, no lookup, no savepoint."""
    return Ticket.objects.create(
        account_id=conversation.account_id,
        conversation=conversation,
        **_ticket_fields(conversation, pipeline, stage, defaults),
    )


def _ticket_details(ticket: Ticket) -> dict:
    return {
        "conversation": ticket.conversation_id,
        "pipeline": ticket.pipeline_id,
        "stage": ticket.stage_id,
        "priority": ticket.priority,
        "owner": ticket.owner_id,
    }


def mail_ticket_defaults(account_id: int, inbox_id: int) -> TicketDefaults | None:
    """The inbox's ticket defaults when mail opens tickets there, with pipeline, stage and owner (C11)."""
    defaults = (
        TicketDefaults.objects.filter(account_id=account_id, inbox_id=inbox_id, create_tickets=True)
        .select_related("pipeline", "stage", "owner")
        .first()
    )
    # A pipeline or stage deleted since the tab was saved leaves nothing to open the ticket in.
    if defaults is None or defaults.pipeline is None or defaults.stage is None:
        return None
    return defaults


_LOOK_UP = object()


# No savepoint of its own: the ingest pipeline calls it inside the message's transaction, which any
# error here rolls back whole (a savepoint is two more round trips for every new conversation).
@transaction.atomic(savepoint=False)
def open_ticket_for_new_conversation(
    conversation: Conversation, *, defaults=_LOOK_UP, started: bool = False
) -> Ticket | None:
    """Make a conversation that mail just started a ticket, when its inbox says so (C11, G3).

    Safe to call twice: the conversation keeps one ticket. `defaults`: the
    inbox's `mail_ticket_defaults`, when the caller has read them (the ingest
    pipeline, once a batch). `started`: the conversation was created in this
    very transaction, so no ticket of it can exist yet: it is inserted
    without looking for one first.
    """
    if defaults is _LOOK_UP:
        defaults = mail_ticket_defaults(conversation.account_id, conversation.inbox_id)
    if defaults is None:
        return None
    assert (defaults.account_id, defaults.inbox_id) == (conversation.account_id, conversation.inbox_id), (
        "ticket defaults of another inbox"
    )
    if started and connection.vendor == "postgresql":
        return _insert_opened_ticket(conversation, defaults)
    if started:
        ticket, created = _new_ticket(conversation, defaults.pipeline, defaults.stage, defaults), True
    else:
        ticket, created = _open_ticket(conversation, defaults.pipeline, defaults.stage, defaults)
    if created:
        record_change(None, ticket, "ticket_opened", **_ticket_details(ticket))
        created = ConversationEvent.Kind.TICKET_CREATED
        record_event(conversation, created, pipeline=ticket.pipeline.name, stage=ticket.stage.name)
    return ticket


def _insert_opened_ticket(conversation: Conversation, defaults: TicketDefaults) -> Ticket:
    """The ticket, its audit row and its activity entry in one statement (as the ORM path writes them).

    It runs for every conversation mail starts: three ORM INSERTs cost more CPU than the rest of
    the ticket's work, and two more round trips (issue 18).
    """
    ticket = Ticket(
        account_id=conversation.account_id,
        conversation=conversation,
        **_ticket_fields(conversation, defaults.pipeline, defaults.stage, defaults),
    )
    entry = event(
        conversation,
        ConversationEvent.Kind.TICKET_CREATED,
        pipeline=defaults.pipeline.name,
        stage=defaults.stage.name,
    )
    tickets, audit, events = (model._meta.db_table for model in (Ticket, AuditEntry, ConversationEvent))
    opened = (
        f"WITH ticket AS (INSERT INTO {tickets} (account_id, conversation_id, pipeline_id, stage_id, "  # noqa: S608
        "priority, owner_id, created_at, updated_at, closed_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id), "
        f"audit AS (INSERT INTO {audit} (account_id, actor_id, action, target, details, created_at) "
        "SELECT %s, NULL, %s, %s || ticket.id, %s::jsonb, %s FROM ticket) "
        f"INSERT INTO {events} (account_id, conversation_id, actor_id, kind, details, created_at) "
        "SELECT %s, %s, NULL, %s, %s::jsonb, %s FROM ticket RETURNING (SELECT id FROM ticket)"
    )
    params = [
        ticket.account_id,
        ticket.conversation_id,
        ticket.pipeline_id,
        ticket.stage_id,
        ticket.priority,
        ticket.owner_id,
        ticket.created_at,
        ticket.updated_at,
        ticket.closed_at,
        ticket.account_id,
        "ticket_opened",
        "Ticket Ticket #",  # record_change's target: the type's name, then str(ticket)
        json.dumps(_ticket_details(ticket)),
        ticket.created_at,
        entry.account_id,
        entry.conversation_id,
        str(entry.kind),
        json.dumps(entry.details),
        entry.created_at,
    ]
    with connection.cursor() as cursor:
        cursor.execute(opened, params)
        [(ticket.pk,)] = cursor.fetchall()
    ticket._state.adding = False
    return ticket


@transaction.atomic
def create_ticket(conversation: Conversation, *, by: Membership) -> Ticket:
    """Make a conversation a ticket by hand, with its inbox's ticket defaults (H4, C11).

    A conversation that already has a ticket keeps it: a second click changes nothing.
    """
    assert conversation.account_id == by.account_id, "member and conversation in different accounts"
    require_conversation_action(by, conversation, ConversationAction.TICKET)
    defaults = ticket_defaults_for(conversation.inbox)
    pipeline, stage = defaults.pipeline, defaults.stage
    if pipeline is None or stage is None:
        pipeline = Pipeline.objects.filter(account_id=conversation.account_id).first()
        stage = pipeline.stages.order_by("position").first() if pipeline else None
    if pipeline is None or stage is None:
        raise ValidationError({"pipeline": "Create a pipeline with at least one stage first."})
    ticket, created = _open_ticket(conversation, pipeline, stage, defaults)
    if created:
        record_change(by, ticket, "ticket_created", **_ticket_details(ticket))
        created = ConversationEvent.Kind.TICKET_CREATED
        record_event(conversation, created, by=by, pipeline=ticket.pipeline.name, stage=ticket.stage.name)
    return ticket


@transaction.atomic
def move_ticket(ticket: Ticket, stage: Stage, *, by: Membership) -> Ticket:
    """Move a ticket to another stage of its pipeline; a closed stage closes its conversation (H4, C11)."""
    assert_same_account(by, ticket, stage)
    conversation = ticket.conversation
    require_inbox_action(by, conversation.inbox)
    if stage.pipeline_id != ticket.pipeline_id:
        pipeline = ticket.pipeline
        message = (
            f"“{stage.name}” is not a stage of the pipeline “{pipeline.name}”. Choose one of its stages."
        )
        raise ValidationError({"stage": message})
    if stage.pk == ticket.stage_id:
        return ticket
    previous = ticket.stage
    now = timezone.now()
    ticket.stage, ticket.updated_at = stage, now
    if stage.is_closed and not previous.is_closed:
        ticket.closed_at = now
        set_conversation_status(conversation, Conversation.Status.CLOSED, by=by)
        # Its assignee has one open conversation fewer: under a limit per member, a waiting one may go out.
        transaction.on_commit(
            lambda: assign_backlog(conversation.account_id, conversation.inbox_id), robust=True
        )
    elif previous.is_closed and not stage.is_closed:
        ticket.closed_at = None
        set_conversation_status(conversation, Conversation.Status.OPEN, by=by)
        # D5: an assignee since away, removed or on a free seat gives way to the rule.
        route_reopened_conversation(conversation)
    ticket.save(update_fields=["stage", "updated_at", "closed_at"])
    record_change(by, ticket, "ticket_moved", stage=stage.pk, previous=previous.pk)
    moved = ConversationEvent.Kind.TICKET_MOVED
    record_event(conversation, moved, by=by, stage=stage.name, previous=previous.name)
    return ticket


@transaction.atomic
def set_ticket_priority(ticket: Ticket, priority: str, *, by: Membership) -> Ticket:
    """Set a ticket's priority (H4)."""
    assert_same_account(by, ticket)
    require_inbox_action(by, ticket.conversation.inbox)
    if priority not in TicketDefaults.Priority.values:
        raise ValidationError({"priority": "Choose a priority."})
    if priority != ticket.priority:
        previous, ticket.priority, ticket.updated_at = ticket.priority, priority, timezone.now()
        ticket.save(update_fields=["priority", "updated_at"])
        record_change(by, ticket, "ticket_priority_set", priority=priority, previous=previous)
        labels = TicketDefaults.Priority
        record_event(
            ticket.conversation,
            ConversationEvent.Kind.TICKET_PRIORITY,
            by=by,
            priority=labels(priority).label,
            previous=labels(previous).label,
        )
    return ticket


@transaction.atomic
def set_ticket_owner(ticket: Ticket, owner: Membership | None, *, by: Membership) -> Ticket:
    """Give a ticket to a member of the account, or to nobody (H4)."""
    assert_same_account(by, ticket, *([owner] if owner is not None else []))
    require_inbox_action(by, ticket.conversation.inbox)
    owner_id = owner.pk if owner is not None else None
    if owner_id != ticket.owner_id:
        previous, ticket.owner, ticket.updated_at = ticket.owner_id, owner, timezone.now()
        ticket.save(update_fields=["owner", "updated_at"])
        record_change(by, ticket, "ticket_owner_set", owner=owner_id, previous=previous)
        record_event(ticket.conversation, ConversationEvent.Kind.TICKET_OWNER, by=by, owner=name_of(owner))
    return ticket


@transaction.atomic
def reopen_ticket_for(conversation: Conversation, *, by: Membership | None) -> Ticket | None:
    """A reopened conversation reopens its closed ticket, at its pipeline's first open stage (C11)."""
    ticket = lock_row(
        Ticket.objects.select_related("stage").filter(
            account_id=conversation.account_id, conversation=conversation
        )
    )
    if ticket is None or not ticket.stage.is_closed:
        return ticket
    stage = Stage.objects.filter(pipeline_id=ticket.pipeline_id, is_closed=False).order_by("position").first()
    if stage is None:
        return ticket
    previous = ticket.stage
    ticket.stage, ticket.closed_at, ticket.updated_at = stage, None, timezone.now()
    ticket.save(update_fields=["stage", "closed_at", "updated_at"])
    record_change(by, ticket, "ticket_reopened", stage=stage.pk, previous=previous.pk)
    return ticket


def follow_assignees(decisions) -> int:
    """Tickets of conversations just assigned take the assignee as owner, where the inbox says so (C11).

    Their tickets were opened with the message, before the assignment was
    decided; only a ticket still without an owner follows. How many did.
    """
    by_inbox: dict[tuple[int, int], dict[int, int]] = {}
    for decision in decisions:
        if decision.chosen_id is not None:
            assigned = by_inbox.setdefault((decision.account_id, decision.inbox_id), {})
            assigned[decision.conversation_id] = decision.chosen_id
    return sum(
        _follow(account_id, inbox_id, assigned) for (account_id, inbox_id), assigned in by_inbox.items()
    )


def _follow(account_id: int, inbox_id: int, assigned: dict[int, int]) -> int:
    """One UPDATE, no read first: it runs for every batch of new conversations (issue 18)."""
    ticket, defaults = Ticket._meta.db_table, TicketDefaults._meta.db_table
    whens = " ".join(["WHEN %s THEN %s"] * len(assigned))
    ids = ", ".join(["%s"] * len(assigned))
    follow = (
        f"UPDATE {ticket} SET owner_id = CASE conversation_id {whens} END "  # noqa: S608
        f"WHERE account_id = %s AND conversation_id IN ({ids}) AND owner_id IS NULL AND EXISTS ("
        f"SELECT 1 FROM {defaults} WHERE account_id = %s AND inbox_id = %s AND owner_mode = %s)"
    )
    params = [value for pair in assigned.items() for value in pair]
    params += [account_id, *assigned, account_id, inbox_id, TicketDefaults.OwnerMode.CONVERSATION_OWNER]
    with connection.cursor() as cursor:
        cursor.execute(follow, params)
        return cursor.rowcount
