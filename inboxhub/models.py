import re

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_scopes import ScopedManager

RESERVED_SUBDOMAINS = frozenset(
    [
        "admin",
        "administrator",
        "api",
        "app",
        "apps",
        "assets",
        "auth",
        "billing",
        "blog",
        "cdn",
        "dashboard",
        "demo",
        "dev",
        "docs",
        "email",
        "ftp",
        "help",
        "imap",
        "inbox",
        "inboxhub",
        "login",
        "logout",
        "mail",
        "media",
        "mx",
        "news",
        "pop",
        "pop3",
        "root",
        "security",
        "settings",
        "signup",
        "smtp",
        "staff",
        "static",
        "status",
        "support",
        "system",
        "test",
        "webmail",
        "www",
    ]
)
SUBDOMAIN_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,38}[a-z0-9]")


def validate_subdomain(value: str) -> None:
    if not SUBDOMAIN_RE.fullmatch(value or ""):
        raise ValidationError(
            "Use 3 to 40 lowercase letters, digits or hyphens, not starting or ending with a hyphen.",
            code="invalid",
        )
    if value[2:4] == "--":
        # RFC 5891 §4.2.3.1: "xn--" and every other "??--" prefix belong to encoded (punycode) names.
        raise ValidationError(
            "Use a plain name: a hyphen pair after the first two characters (as in xn--) is not allowed.",
            code="encoded",
        )
    if value in RESERVED_SUBDOMAINS:
        raise ValidationError("This subdomain is reserved. Please choose another.", code="reserved")


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields):
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)

    def get_by_natural_key(self, username: str):
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person; email is the login. Belongs to accounts through memberships."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def first_name(self) -> str:
        return self.full_name.split(" ", 1)[0] if self.full_name else ""

    @property
    def last_name(self) -> str:
        parts = self.full_name.split(" ", 1)
        return parts[1] if len(parts) > 1 else ""


class Account(models.Model):
    """A tenant: one customer company, reached at /a/<subdomain>/."""

    class Tier(models.TextChoices):
        FREE = "free", "Free"
        STARTER = "starter", "Starter"
        PROFESSIONAL = "professional", "Professional"
        ENTERPRISE = "enterprise", "Enterprise"

    subdomain = models.CharField(max_length=40, unique=True, validators=[validate_subdomain])
    company_name = models.CharField(max_length=100)
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.FREE)
    created_at = models.DateTimeField(default=timezone.now)
    # Who signed up for the account and has not yet opened the link mailed to them: until they do,
    # nothing is sent from it, so a stranger's address cannot be made to send mail.
    unverified_founder = models.ForeignKey(
        "User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return self.company_name

    @property
    def allows_many_inboxes(self) -> bool:
        """A3: only professional and enterprise accounts may have more than one inbox."""
        return self.tier in {self.Tier.PROFESSIONAL, self.Tier.ENTERPRISE}


class Membership(models.Model):
    """A user inside an account, with a seat, a permission level and an availability."""

    class Seat(models.TextChoices):
        FREE = "free", "Free"
        SALES_HUB = "sales_hub", "Sales Hub"
        SERVICE_HUB = "service_hub", "Service Hub"

    class Permission(models.TextChoices):
        SUPER_ADMIN = "super_admin", "Super admin"
        ACCOUNT_ADMIN = "account_admin", "Account admin"
        AGENT = "agent", "Agent"

    class Availability(models.TextChoices):
        AVAILABLE = "available", "Available"
        AWAY = "away", "Away"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    username = models.SlugField(
        max_length=40,
        validators=[
            RegexValidator(r"^[a-z0-9][a-z0-9._-]*$", "Use lowercase letters, digits, dots or hyphens.")
        ],
    )
    seat = models.CharField(max_length=20, choices=Seat.choices, default=Seat.FREE)
    permission = models.CharField(max_length=20, choices=Permission.choices, default=Permission.AGENT)
    availability = models.CharField(
        max_length=20, choices=Availability.choices, default=Availability.AVAILABLE
    )
    # When the member last set their availability; null until they first do (D9).
    availability_changed_at = models.DateTimeField(null=True, blank=True)
    # Mail me when a conversation is assigned to me while I am away or not signed in (issue 17).
    notify_on_assignment = models.BooleanField(default=True)
    # The member's last request in this account, kept to the minute; null after signing out.
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # When the person first signed in as a member (or accepted an invitation while signed in). Until
    # then they are listed as invited, like an invitation to someone who already has a login, and
    # offered in no picker nor given conversations (issue 16 point 2).
    joined_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="membership_one_per_user"),
            models.UniqueConstraint(fields=["account", "username"], name="membership_username_unique"),
        ]
        ordering = ["user__full_name", "pk"]

    def __str__(self) -> str:
        return f"{self.user} ({self.account.subdomain})"

    @classmethod
    def joined_members(cls, account) -> models.QuerySet:
        """The account's members who have joined, with their users: whom a picker offers (issue 16)."""
        return cls.objects.filter(account=account, joined_at__isnull=False).select_related("user")

    @property
    def has_joined(self) -> bool:
        return self.joined_at is not None

    @property
    def has_paid_seat(self) -> bool:
        return self.seat != self.Seat.FREE

    @property
    def is_super_admin(self) -> bool:
        return self.permission == self.Permission.SUPER_ADMIN

    @property
    def is_admin(self) -> bool:
        return self.permission in {self.Permission.SUPER_ADMIN, self.Permission.ACCOUNT_ADMIN}


class Invitation(models.Model):
    """An offer to join the account made to someone who already has a login; nothing of it is a membership
    until that person, signed in, accepts it (A4)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="invitations")
    # The name and email as the admin typed them: the person's own stored name is not theirs to see.
    full_name = models.CharField(max_length=150)
    email = models.EmailField()
    seat = models.CharField(max_length=20, choices=Membership.Seat.choices, default=Membership.Seat.FREE)
    permission = models.CharField(
        max_length=20, choices=Membership.Permission.choices, default=Membership.Permission.AGENT
    )
    invited_by = models.ForeignKey(Membership, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "user"], name="invitation_one_per_user")]
        ordering = ["full_name", "pk"]

    def __str__(self) -> str:
        return f"{self.email} invited to {self.account_id}"


class Team(models.Model):
    """A named group of members inside an account."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(Membership, related_name="teams", blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [models.UniqueConstraint("account", Lower("name"), name="team_name_unique")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AvailabilityChange(models.Model):
    """One change of a member's availability: to what, by whom, when (D9)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="availability_changes")
    member = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="availability_changes")
    availability = models.CharField(max_length=20, choices=Membership.Availability.choices)
    changed_by = models.ForeignKey(Membership, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        indexes = [
            models.Index(fields=["account", "member", "-created_at"], name="availability_member_recent")
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.member_id} {self.availability} at {self.created_at:%Y-%m-%d %H:%M}"


class SignupAttempt(models.Model):
    """A sign-up posted from an address, counted against its hourly allowance (issue 16 point 3).

    In the database, not the cache: without Redis every web process has a cache of its own, and
    the allowance would be multiplied by their number. Rows older than the window are deleted by
    the next sign-up.
    """

    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["ip", "at"], name="signupattempt_ip_at")]

    def __str__(self) -> str:
        return f"sign-up from {self.ip} at {self.at:%H:%M:%S}"


class AuditEntry(models.Model):
    """One settings change: who changed what, to what value."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(Membership, on_delete=models.SET_NULL, null=True, related_name="+")
    action = models.CharField(max_length=60)
    target = models.CharField(max_length=200)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        indexes = [models.Index(fields=["account", "-created_at"], name="audit_account_recent")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.action} {self.target}"


class OutboundEmail(models.Model):
    """A mail InboxHub sends on its own behalf (an invite, an address verification) through a worker."""

    class Kind(models.TextChoices):
        INVITE = "invite", "Invite"
        ADDRESS_VERIFICATION = "address_verification", "Address verification"
        # D6: a new message from a contact whose owner is away.
        OWNER_NOTIFICATION = "owner_notification", "New message for an away contact owner"
        # Issue 17: a conversation assigned to a member who is away or not signed in.
        ASSIGNMENT_NOTIFICATION = "assignment_notification", "Conversation assigned while away"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="outbound_emails")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    to = models.EmailField()
    subject = models.CharField(max_length=500)
    body = models.TextField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    # The mail server's answer or the connection error; never the smarthost's credentials.
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When a worker took it: a claim older than the task's time limit was left by a dead worker.
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(account="account")

    class Meta:
        indexes = [
            models.Index(
                fields=["account", "kind", "state", "-created_at"], name="outbound_account_kind_state"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.to} ({self.state})"
