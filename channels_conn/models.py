from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_scopes import ScopedManager

from inboxhub.models import Account


class Channel(models.Model):
    """A connected source of messages for one inbox, with an on/off status (F1, F2)."""

    class Kind(models.TextChoices):
        FALLBACK_EMAIL = "fallback_email", "Fallback email address"
        TEAM_EMAIL = "team_email", "Team email"
        CHAT = "chat", "Chat"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="channels")
    # By name: inboxes sit above channels in the layers (README, "Architecture").
    inbox = models.ForeignKey("inboxes.Inbox", on_delete=models.CASCADE, related_name="channels")
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
    """The address InboxHub provides for an inbox: <local>@<subdomain>.<INBOUND_DOMAIN>.

    Also how mail sent from the inbox looks to contacts: from name, from address and
    signature (C1–C7).
    """

    class FromName(models.TextChoices):
        AGENT_AND_COMPANY = "agent_and_company", "Agent and company name"
        COMPANY = "company", "Company name"

    class FromAddress(models.TextChoices):
        DEFAULT = "default", "Use default"
        CUSTOM = "custom", "Customize from address"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="fallback_addresses")
    channel = models.OneToOneField(Channel, on_delete=models.CASCADE, related_name="fallback_address")
    local_part = models.SlugField(max_length=64)
    address = models.EmailField(max_length=254, unique=True)
    # C1: off, the inbox still receives but replies cannot be sent from it.
    send_from = models.BooleanField(default=True)
    from_name_mode = models.CharField(
        max_length=20, choices=FromName.choices, default=FromName.AGENT_AND_COMPANY
    )
    # C3: unique per account, ignoring case; blank means the account's company name.
    company_name = models.CharField(max_length=100, blank=True)
    from_address_mode = models.CharField(
        max_length=10, choices=FromAddress.choices, default=FromAddress.DEFAULT
    )
    custom_from_address = models.EmailField(max_length=254, blank=True)
    # C4: set when the owner of custom_from_address opened the link; reset when the address changes.
    custom_from_verified_at = models.DateTimeField(null=True, blank=True)
    # The nonce of the one verification link that may still be used; blank once used or reset.
    custom_from_nonce = models.CharField(max_length=32, blank=True)
    custom_from_verification_sent_at = models.DateTimeField(null=True, blank=True)
    # C6: stored only as the sanitizer's output; {{full_name}}-style tokens filled at send time.
    signature_html = models.TextField(blank=True)
    # C8: log a forwarded email to its original sender (on) or to the member who forwarded it (off).
    select_original_sender = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "local_part"], name="fallbackaddress_local_unique"),
            models.UniqueConstraint(
                "account",
                Lower("company_name"),
                condition=~models.Q(company_name=""),
                name="fallbackaddress_company_name_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.address

    @property
    def custom_from_verified(self) -> bool:
        return bool(self.custom_from_address and self.custom_from_verified_at)

    @property
    def custom_from_pending(self) -> bool:
        """C4: a custom address is chosen but not verified yet, so the default is used meanwhile."""
        return self.from_address_mode == self.FromAddress.CUSTOM and not self.custom_from_verified


class InboundMessage(models.Model):
    """A raw message as the SMTP ingress received it: the durable spool (G2).

    One row per account an SMTP transaction names: the ingress stores a
    message for recipients of two accounts as two rows, so each account's
    copy is processed, failed and retried on its own (A2). `account` is
    null only for rows spooled before it existed whose recipients are gone.
    Not behind a scoped manager: the ingress, the workers and the sweep
    work across accounts; the pages filter by `account`.
    """

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="inbound_messages", null=True, blank=True
    )
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
    # Once processed, `raw` keeps the mail without the bytes of its attachments, which its messages
    # store as files, deflated (True; `ingest.compaction.original_raw` gives the mail back byte for
    # byte); False: nothing to save, kept as received; None: not looked at yet (issue 18).
    raw_compacted = models.BooleanField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["state", "received_at"], name="inbound_state_received"),
            # What the compaction has yet to look at: processed rows only.
            models.Index(
                fields=["id"],
                name="inbound_to_compact",
                condition=models.Q(state="processed", raw_compacted__isnull=True),
            ),
            # The Failed messages page of one account (G5).
            models.Index(
                fields=["account", "state", "-received_at"],
                name="inbound_account_state",
                condition=models.Q(state="failed"),
            ),
        ]
        ordering = ["received_at", "pk"]

    def __str__(self) -> str:
        return f"inbound #{self.pk} ({self.state})"
