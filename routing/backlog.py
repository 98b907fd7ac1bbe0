"""The backlog: conversations left unassigned go out as soon as someone can take them (D5, D7).

When a member becomes available, each inbox whose rule lists them (directly
or through a team) hands its oldest waiting conversations out again, with
the same fairness as new ones, until nobody eligible is left or the batch
is done. Any number of workers may run it at once: each decision holds the
rule's lock and skips a conversation that got an assignee meanwhile.
"""

from django.db import transaction
from django.db.models import Q
from django_scopes import scope

from inboxes.models import Conversation
from inboxhub.models import Membership
from routing.models import AssignmentDecision, AssignmentRule
from routing.services import route_conversation

BATCH = 100


def assign_backlog_for(member: Membership) -> int:
    """Assign waiting conversations of the inboxes whose rules list this member; how many were assigned."""
    with scope(account=member.account_id):
        inbox_ids = list(_inboxes_listing(member))
    return sum(assign_backlog(member.account_id, inbox_id) for inbox_id in inbox_ids)


def _inboxes_listing(member: Membership):
    return (
        AssignmentRule.objects.filter(
            account_id=member.account_id, enabled=True, assign_to=AssignmentRule.AssignTo.SPECIFIC
        )
        .filter(Q(members=member) | Q(teams__members=member))
        .distinct()
        .values_list("inbox_id", flat=True)
    )


def assign_backlog(account_id: int, inbox_id: int, *, batch: int = BATCH) -> int:
    """Hand an inbox's oldest unassigned open conversations out; stop at the first left waiting.

    Enters the account's scope itself: it runs after a commit, when the request's scope may be gone.
    """
    assigned = 0
    with scope(account=account_id):
        waiting = Conversation.objects.filter(
            account_id=account_id, inbox_id=inbox_id, status=Conversation.Status.OPEN, assignee__isnull=True
        )
        # Machine mail is never handed out (RFC 3834): at the head it would hold up everyone behind it.
        waiting = waiting.filter(automated_reason="").order_by("created_at", "pk")[:batch]
        for conversation in waiting:
            with transaction.atomic():
                decision = route_conversation(conversation, trigger=AssignmentDecision.Trigger.BACKLOG)
            if decision is None:
                continue  # another worker took it meanwhile
            if decision.chosen_id is None:
                break  # nobody is eligible now: the rest waits too
            assigned += 1
    return assigned
