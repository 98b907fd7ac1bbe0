"""State changes for routing: the rule of an inbox, and assigning conversations under it (D1–D8)."""

from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from inboxes.activity import assignment_event
from inboxes.locking import save_inbox_settings
from inboxes.models import Conversation, ConversationEvent
from inboxes.notifications import assignment_mail
from inboxhub.audit import record_change
from inboxhub.lib.db import lock_row, lock_rows
from inboxhub.models import Membership, OutboundEmail
from inboxhub.outbound import queue_emails
from inboxhub.permissions import assert_same_account, require
from routing.engine import Load, decide_for, loads_of, name_of, plan_of
from routing.models import AssigneeState, AssignmentDecision, AssignmentRule
from routing.permissions import PAID_SEAT_REASON, can_edit_routing

Trigger = AssignmentDecision.Trigger
AVAILABLE = Membership.Availability.AVAILABLE


def route_new_conversation(conversation: Conversation) -> AssignmentDecision | None:
    """Assign one conversation that mail just started, under its inbox's rule (G3, D2–D8)."""
    return route_conversation(conversation, trigger=Trigger.NEW)


ROUTE_BATCH = 200


# No savepoint: its callers (the ingest pipeline, the sweep) run it in a transaction of its own.
@transaction.atomic(savepoint=False)
def route_waiting(account_id: int, inbox_id: int, *, limit: int = ROUTE_BATCH) -> list[AssignmentDecision]:
    """Decide every new conversation of an inbox still waiting for its first decision, oldest first (D2–D8).

    What the ingest pipeline calls once its messages are committed. One lock
    of the rule, one read of the people and their load, the decisions made in
    memory one after the other (each counting the ones before it), then one
    write of each kind: under load, the conversations that arrived while
    another worker held the lock are decided together, so an inbox decides as
    fast as mail comes (D7). Conversations another worker is deciding are
    skipped, never waited for.
    """
    rule = (
        AssignmentRule.objects.select_for_update()
        .filter(account_id=account_id, inbox_id=inbox_id, enabled=True)
        .first()
    )
    if rule is None:
        return []
    decided = AssignmentDecision.objects.filter(account_id=account_id, conversation=OuterRef("pk"))
    waiting = lock_rows(
        Conversation.objects.select_related("account", "inbox", "contact__owner__user")
        .filter(account_id=account_id, inbox_id=inbox_id, status=Conversation.Status.OPEN, assignee=None)
        .exclude(Exists(decided))
        .order_by("created_at", "pk"),
        limit=limit,
        skip_locked=True,
    )
    return _decide(rule, waiting, Trigger.NEW) if waiting else []


# No savepoint: it always runs as part of a bigger change (a message's ingest, a backlog step).
@transaction.atomic(savepoint=False)
def route_conversation(conversation: Conversation, *, trigger: str) -> AssignmentDecision | None:
    """Give one waiting conversation to whom the inbox's rule says, and record why (D2–D8).

    For the backlog and reopened conversations; new mail goes through
    `route_waiting`. A conversation that is closed or has an assignee already
    (a person's choice, or an earlier run of a retried task) is left alone:
    None. None too when the inbox assigns nothing automatically.
    """
    waiting = lock_row(
        Conversation.objects.select_related("account", "inbox", "contact__owner__user").filter(
            account_id=conversation.account_id, pk=conversation.pk
        )
    )
    if waiting is None or waiting.assignee_id is not None or waiting.status != Conversation.Status.OPEN:
        return None
    rule = (
        AssignmentRule.objects.select_for_update()
        .filter(account_id=waiting.account_id, inbox_id=waiting.inbox_id, enabled=True)
        .first()
    )
    if rule is None:
        return None
    [record] = _decide(rule, [waiting], trigger)
    conversation.assignee = waiting.assignee
    return record


def _decide(rule: AssignmentRule, waiting: list[Conversation], trigger: str) -> list[AssignmentDecision]:
    """Decide each conversation in turn, counting the ones before it, then write them all (D7, D8).

    The caller holds the rule's row lock: no other decision of this inbox reads or writes meanwhile.
    """
    decided_at = timezone.now()
    plan = plan_of(rule)
    people = list(plan.members)
    if rule.assign_to == AssignmentRule.AssignTo.CONTACT_OWNER:
        people = list({c.contact.owner_id: c.contact.owner for c in waiting if c.contact.owner}.values())
    loads = loads_of(waiting[0].inbox, people)
    snapshot = plan.snapshot(rule)
    records, states, events, mails = [], {}, [], []
    for position, conversation in enumerate(waiting):
        # A microsecond apart: the log and the tie-break keep the order the decisions were made in.
        moment = decided_at + timedelta(microseconds=position)
        decision = decide_for(plan, conversation, loads)
        # Recorded before the load counts this decision: the log shows what was weighed.
        records.append(_record(conversation, decision, snapshot, trigger, moment))
        if decision.chosen is not None:
            load = loads.setdefault(decision.chosen.pk, Load())
            load.open, load.last_assigned_at = load.open + 1, moment
            conversation.assignee = decision.chosen
            events.append(
                assignment_event(
                    conversation, decision.chosen, None, by=None, at=moment, reason=decision.summary
                )
            )
            states[decision.chosen.pk] = AssigneeState(
                account_id=rule.account_id,
                inbox_id=rule.inbox_id,
                member=decision.chosen,
                last_assigned_at=moment,
            )
        if decision.notify_owner is not None:
            mails.append(_away_owner_mail(conversation, decision.notify_owner))
        elif decision.chosen is not None:
            # One mail per assignment: an away owner given the conversation already has D6's mail.
            mails.append(assignment_mail(conversation, decision.chosen, by=None, reason=decision.summary))
    _set_assignees(waiting)
    ConversationEvent.objects.bulk_create(events)  # the conversations' activity (H4)
    queue_emails(waiting[0].account, [mail for mail in mails if mail is not None])
    AssigneeState.objects.bulk_create(
        list(states.values()),
        update_conflicts=True,
        unique_fields=["account", "inbox", "member"],
        update_fields=["last_assigned_at"],
    )
    return AssignmentDecision.objects.bulk_create(records)


def _record(conversation: Conversation, decision, rule: dict, trigger: str, moment) -> AssignmentDecision:
    return AssignmentDecision(
        account_id=conversation.account_id,
        inbox_id=conversation.inbox_id,
        conversation=conversation,
        trigger=trigger,
        rule=rule,
        candidates=decision.candidates_json(),
        excluded=decision.excluded_json(),
        chosen=decision.chosen,
        summary=decision.summary,
        created_at=moment,
    )


def _set_assignees(conversations: list[Conversation]) -> None:
    """One UPDATE per member given some: fewer statements, and far less work, than a CASE per row."""
    by_assignee: dict[int, list[int]] = {}
    for conversation in conversations:
        if conversation.assignee_id is not None:
            by_assignee.setdefault(conversation.assignee_id, []).append(conversation.pk)
    for assignee_id, pks in by_assignee.items():
        Conversation.objects.filter(account_id=conversations[0].account_id, pk__in=pks).update(
            assignee_id=assignee_id
        )


def _away_owner_mail(conversation: Conversation, owner: Membership) -> OutboundEmail:
    """D6: the contact's owner is away; a mail tells them a new message is waiting (unsaved)."""
    contact = conversation.contact
    return OutboundEmail(
        account=conversation.account,
        kind=OutboundEmail.Kind.OWNER_NOTIFICATION,
        to=owner.user.email,
        subject=f"New message from {contact}: {conversation.subject or '(no subject)'}",
        body=(
            f"Hello {name_of(owner)},\n\n"
            f"{contact} ({contact.email}), whose owner you are, wrote to the inbox "
            f"{conversation.inbox.name} while you are away:\n\n"
            f"  {conversation.subject or '(no subject)'}\n\n"
            "Open InboxHub to answer, or set yourself Available to get such conversations.\n"
        ),
    )


@transaction.atomic
def route_reopened_conversation(conversation: Conversation) -> AssignmentDecision | None:
    """A reopened conversation whose assignee is gone, away or on a free seat is routed again (D5).

    Only where the inbox assigns automatically: elsewhere the assignee stays.
    """
    current = lock_row(
        Conversation.objects.select_related("assignee").filter(
            account_id=conversation.account_id, pk=conversation.pk
        )
    )
    assignee = current.assignee if current is not None else None
    if current is None or (
        assignee is not None and assignee.has_paid_seat and assignee.availability == AVAILABLE
    ):
        return None
    routing_on = AssignmentRule.objects.filter(
        account_id=conversation.account_id, inbox_id=conversation.inbox_id, enabled=True
    ).exists()
    if not routing_on:
        return None
    Conversation.objects.filter(account_id=conversation.account_id, pk=conversation.pk).update(assignee=None)
    if assignee is not None:
        reason = (
            "reopened while they are away" if assignee.has_paid_seat else "reopened; they have a free seat"
        )
        assignment_event(conversation, None, assignee, by=None, reason=reason).save()
    conversation.assignee = None
    return route_conversation(conversation, trigger=Trigger.REOPENED)


def free_seat_refusal(members) -> str | None:
    """The refusal for free-seat members among those picked for automatic assignment (D4), or None."""
    names = [m.user.full_name or m.user.email for m in members if not m.has_paid_seat]
    if not names:
        return None
    if len(names) == 1:
        return f"{names[0]} has a free seat and can't be assigned automatically."
    return f"{', '.join(names)} have free seats and can't be assigned automatically."


@transaction.atomic
def update_assignment_rule(
    rule: AssignmentRule,
    *,
    enabled: bool,
    assign_to: str,
    members,
    teams,
    only_available: bool,
    capacity: int | None = None,
    by: Membership,
) -> AssignmentRule:
    """Set how the inbox's new conversations are assigned; only a paid-seat editor may (D1–D5).

    `rule` may be unsaved (an inbox whose tab was never saved): it is created here.
    """
    members, teams = list(members), list(teams)
    assert_same_account(by, rule, *members, *teams)
    require(by, "manage_inboxes")
    if not can_edit_routing(by):
        raise PermissionDenied(PAID_SEAT_REASON)
    if refusal := free_seat_refusal(members):
        raise ValidationError({"members": refusal})
    if assign_to not in AssignmentRule.AssignTo.values:
        raise ValidationError({"assign_to": "Choose who new conversations are assigned to."})
    if enabled and assign_to == AssignmentRule.AssignTo.SPECIFIC and not members and not teams:
        raise ValidationError({"members": "Pick at least one member or team to assign conversations to."})
    rule = save_inbox_settings(
        AssignmentRule,
        account_id=rule.account_id,
        inbox_id=rule.inbox_id,
        enabled=enabled,
        assign_to=assign_to,
        only_available=only_available,
        capacity=capacity,
    )
    rule.members.set(members)
    rule.teams.set(teams)
    record_change(
        by,
        rule,
        "assignment_rule_updated",
        enabled=enabled,
        assign_to=assign_to,
        members=sorted(m.pk for m in members),
        teams=sorted(t.pk for t in teams),
        only_available=only_available,
        capacity=capacity,
    )
    return rule
