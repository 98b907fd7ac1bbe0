from django.db import models
from django.utils import timezone
from django_scopes import ScopedManager

from inboxes.models import Inbox
from inboxhub.models import Account, Membership, Team


class AssignmentRule(models.Model):
    """How new conversations of one inbox are assigned automatically (D1–D5)."""

    class AssignTo(models.TextChoices):
        SPECIFIC = "specific", "Specific users and teams"
        CONTACT_OWNER = "contact_owner", "Contact owner"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="assignment_rules")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="assignment_rules")
    enabled = models.BooleanField(default=False)
    assign_to = models.CharField(max_length=20, choices=AssignTo.choices, default=AssignTo.SPECIFIC)
    # Only paid-seat members are eligible (D4); a team contributes its paid-seat members at routing time.
    members = models.ManyToManyField(Membership, related_name="+", blank=True)
    teams = models.ManyToManyField(Team, related_name="+", blank=True)
    # D5: only members whose availability is "available" are eligible.
    only_available = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "inbox"], name="assignmentrule_one_per_inbox")
        ]

    def __str__(self) -> str:
        return f"Automatic assignment of {self.inbox}"
