"""Reads for the Automation tab (D)."""

from django.db.models import Count, Q, QuerySet

from inboxes.models import Inbox
from inboxhub.models import Membership, Team
from routing.models import AssignmentRule


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
