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
    # At most this many open conversations of this inbox each; members at it are skipped. None: no limit.
    capacity = models.PositiveSmallIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "inbox"], name="assignmentrule_one_per_inbox")
        ]

    def __str__(self) -> str:
        return f"Automatic assignment of {self.inbox}"


class AssignmentDecision(models.Model):
    """One automatic assignment decision, with everything it weighed, for the conversation to show (D8)."""

    class Trigger(models.TextChoices):
        NEW = "new", "New conversation"
        BACKLOG = "backlog", "Waiting conversation, when a member became free"
        REOPENED = "reopened", "Reopened conversation"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(
        "inboxes.Conversation", on_delete=models.CASCADE, related_name="assignment_decisions"
    )
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.NEW)
    # The rule as it was: enabled, assign_to, only_available, capacity, member and team ids.
    rule = models.JSONField(default=dict)
    # [{"member": id, "name": …, "open": n}] of the eligible, and [{"member", "name", "reason"}] of the rest.
    candidates = models.JSONField(default=list)
    excluded = models.JSONField(default=list)
    chosen = models.ForeignKey(Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # The decision in words, as the conversation shows it.
    summary = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        indexes = [
            models.Index(fields=["account", "conversation", "-created_at"], name="decision_conversation"),
        ]
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.summary


class AssigneeState(models.Model):
    """When the engine last gave a member a conversation of an inbox: the tie-break of D7."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    last_assigned_at = models.DateTimeField()

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "inbox", "member"], name="assigneestate_one_per_member"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member} in {self.inbox}"
