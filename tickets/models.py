from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_scopes import ScopedManager

from inboxhub.models import Account


class Pipeline(models.Model):
    """A sequence of stages a support ticket moves through."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="pipelines")
    name = models.CharField(max_length=100)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [models.UniqueConstraint("account", Lower("name"), name="pipeline_name_unique")]
        ordering = ["-is_default", "name"]

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="stages")
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField()
    is_closed = models.BooleanField(default=False)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "pipeline", "position"], name="stage_position_unique")
        ]
        ordering = ["pipeline", "position"]

    def __str__(self) -> str:
        return self.name


class TicketDefaults(models.Model):
    """Whether an inbox's incoming conversations become tickets, and how those tickets start (C11)."""

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    class OwnerMode(models.TextChoices):
        CONVERSATION_OWNER = "conversation_owner", "Conversation owner"
        MEMBER = "member", "A specific member"
        NOBODY = "nobody", "No owner"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="ticket_defaults")
    inbox = models.ForeignKey("inboxes.Inbox", on_delete=models.CASCADE, related_name="ticket_defaults")
    create_tickets = models.BooleanField(default=False)
    # Deleting a pipeline or stage leaves the defaults unset rather than deleting them; the tab says so.
    pipeline = models.ForeignKey(Pipeline, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    stage = models.ForeignKey(Stage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    owner_mode = models.CharField(
        max_length=20, choices=OwnerMode.choices, default=OwnerMode.CONVERSATION_OWNER
    )
    # Used when owner_mode is "member"; a removed member leaves it empty and the tab asks for another.
    owner = models.ForeignKey(
        "inboxhub.Membership", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "inbox"], name="ticketdefaults_one_per_inbox"),
        ]
        verbose_name_plural = "ticket defaults"

    def __str__(self) -> str:
        return f"Ticket defaults of {self.inbox}"


class Ticket(models.Model):
    """A support case linked to one conversation, at a stage of a pipeline (C11, H4)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="tickets")
    conversation = models.OneToOneField(
        "inboxes.Conversation", on_delete=models.CASCADE, related_name="ticket"
    )
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="tickets")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="tickets")
    priority = models.CharField(
        max_length=10, choices=TicketDefaults.Priority.choices, default=TicketDefaults.Priority.MEDIUM
    )
    owner = models.ForeignKey(
        "inboxhub.Membership", on_delete=models.SET_NULL, null=True, blank=True, related_name="owned_tickets"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(account="account")

    class Meta:
        indexes = [
            # The tickets page: one pipeline's tickets by stage, newest first, keyset paged.
            models.Index(
                fields=["account", "pipeline", "stage", "-created_at", "-id"], name="ticket_pipeline_stage"
            ),
            models.Index(fields=["account", "owner"], name="ticket_owner"),
        ]

    def __str__(self) -> str:
        return f"Ticket #{self.pk}"
