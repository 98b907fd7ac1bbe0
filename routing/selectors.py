"""Reads for the Automation tab (D)."""

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from inboxes.models import Conversation, Inbox
from inboxhub.models import Membership, Team
from routing.engine import Decision, Load, Plan, decide_for, loads_of
from routing.models import AssignmentDecision, AssignmentRule

DRY_RUN_CONVERSATIONS = 100


def assignment_rule_for(inbox: Inbox) -> AssignmentRule:
    """The inbox's rule, or an unsaved one with the defaults (off, D5 checked) until it is first saved."""
    rule = AssignmentRule.objects.filter(account_id=inbox.account_id, inbox=inbox).first()
    return rule or AssignmentRule(account_id=inbox.account_id, inbox=inbox)


def teams_with_paid_counts(account) -> QuerySet[Team]:
    """The account's teams, each with `member_count` and `paid_count` (D4: only paid seats count)."""
    return Team.objects.filter(account=account).annotate(
        member_count=Count("members", distinct=True),
        paid_count=Count("members", filter=~Q(members__seat=Membership.Seat.FREE), distinct=True),
    )


@dataclass
class Trial:
    conversation: Conversation
    decision: Decision


def dry_run(inbox: Inbox, plan: Plan, *, last: int = DRY_RUN_CONVERSATIONS) -> list[Trial]:
    """Who would have got the inbox's last conversations under `plan`, and why; nothing changes (D8).

    Replays them oldest first from today's load of everyone involved, without
    those conversations, counting each simulated assignment as the engine
    would; availability and seats are as they are now.
    """
    recent = list(
        Conversation.objects.filter(account_id=inbox.account_id, inbox=inbox)
        .select_related("contact__owner__user")
        .order_by("-created_at", "-pk")[:last]
    )
    recent.reverse()
    owners = {c.contact.owner for c in recent if c.contact.owner is not None}
    people = {member.pk: member for member in (*plan.members, *owners)}.values()
    loads = loads_of(inbox, people)
    for conversation in recent:
        if conversation.status == Conversation.Status.OPEN and conversation.assignee_id in loads:
            loads[conversation.assignee_id].open -= 1
    trials = []
    for conversation in recent:
        decision = decide_for(plan, conversation, loads)
        if decision.chosen is not None:
            load = loads.setdefault(decision.chosen.pk, Load())
            load.open += 1
            load.last_assigned_at = conversation.created_at
        trials.append(Trial(conversation, decision))
    return trials


def waiting_inboxes(before) -> QuerySet:
    """(account, inbox) of the enabled rules with a new conversation undecided since `before` (the sweep)."""
    decided = AssignmentDecision.objects.filter(
        account_id=OuterRef("account_id"), conversation=OuterRef("pk")
    )
    waiting = Conversation.objects.filter(
        account_id=OuterRef("account_id"),
        inbox_id=OuterRef("inbox_id"),
        status=Conversation.Status.OPEN,
        assignee=None,
        created_at__lt=before,
    ).exclude(Exists(decided))
    return (
        AssignmentRule.objects.filter(enabled=True)
        .filter(Exists(waiting))
        .values_list("account_id", "inbox_id")
    )
