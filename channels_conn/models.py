from django.db import models
from django.utils import timezone
from django_scopes import ScopedManager

from inboxes.models import Inbox
from inboxhub.models import Account


class Channel(models.Model):
    """A connected source of messages for one inbox, with an on/off status (F1, F2)."""

    class Kind(models.TextChoices):
        FALLBACK_EMAIL = "fallback_email", "Fallback email address"
        TEAM_EMAIL = "team_email", "Team email"
        CHAT = "chat", "Chat"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="channels")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="channels")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        indexes = [models.Index(fields=["account", "inbox"], name="channel_account_inbox")]
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.inbox}"


class FallbackAddress(models.Model):
    """The address InboxHub provides for an inbox: <local>@<subdomain>.<INBOUND_DOMAIN>."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="fallback_addresses")
    channel = models.OneToOneField(Channel, on_delete=models.CASCADE, related_name="fallback_address")
    local_part = models.SlugField(max_length=64)
    address = models.EmailField(max_length=254, unique=True)
    # C8: log a forwarded email to its original sender (on) or to the member who forwarded it (off).
    select_original_sender = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "local_part"], name="fallbackaddress_local_unique")
        ]

    def __str__(self) -> str:
        return self.address


class InboundMessage(models.Model):
    """A raw message as the SMTP ingress received it: the durable spool (G2).

    Not tenant-scoped: one SMTP transaction may name recipients of several
    accounts; processing resolves each recipient to its account and inbox.
    """

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"

    raw = models.BinaryField()
    size = models.PositiveIntegerField()
    mail_from = models.CharField(max_length=512, blank=True)
    rcpt_tos = models.JSONField(default=list)
    peer_ip = models.GenericIPAddressField(null=True, blank=True)
    helo = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=20, choices=State.choices, default=State.RECEIVED)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "received_at"], name="inbound_state_received")]
        ordering = ["received_at", "pk"]

    def __str__(self) -> str:
        return f"inbound #{self.pk} ({self.state})"
