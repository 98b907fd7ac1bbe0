"""State changes for routing: automatic assignment of new conversations (D)."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from inboxes.locking import save_inbox_settings
from inboxes.models import Conversation
from inboxhub.audit import record_change
from inboxhub.models import Membership
from inboxhub.permissions import require
from routing.models import AssignmentRule
from routing.permissions import PAID_SEAT_REASON, can_edit_routing


def route_new_conversation(conversation: Conversation) -> None:
    """Route a conversation that mail just started (G3, D).

    Called once for every new conversation, inside its ingest transaction. Does
    nothing yet: the routing issue fills in automatic assignment (D2–D8) here,
    and C11's tickets for incoming conversations hang off this same hook.
    """


def _assert_same_account(by: Membership, *objects) -> None:
    for obj in objects:
        assert obj.account_id == by.account_id, "member and object in different accounts"


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
    by: Membership,
) -> AssignmentRule:
    """Set how the inbox's new conversations are assigned; only a paid-seat editor may (D1–D5).

    `rule` may be unsaved (an inbox whose tab was never saved): it is created here.
    """
    members, teams = list(members), list(teams)
    _assert_same_account(by, rule, *members, *teams)
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
    )
    return rule
