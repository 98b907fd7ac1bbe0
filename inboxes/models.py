import uuid

from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_scopes import ScopedManager

from inboxhub.lib.mail.authentication import stored_verdict
from inboxhub.models import Account, Membership, Team


class Inbox(models.Model):
    """A container of conversations with its own access list and channels."""

    class Access(models.TextChoices):
        EVERYONE = "everyone", "Available to everyone"
        SPECIFIC = "specific", "Specific users and teams"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="inboxes")
    name = models.CharField(max_length=100)
    is_default = models.BooleanField(default=False)
    access = models.CharField(max_length=20, choices=Access.choices, default=Access.EVERYONE)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint("account", Lower("name"), name="inbox_name_unique"),
            models.UniqueConstraint(
                fields=["account"], condition=models.Q(is_default=True), name="inbox_one_default"
            ),
        ]
        ordering = ["-is_default", "name"]
        verbose_name_plural = "inboxes"

    def __str__(self) -> str:
        return self.name


class InboxAccess(models.Model):
    """One member or team on an inbox's access list (B5, B6); used while the inbox's access is specific."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="access_grants")
    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, null=True, blank=True, related_name="inbox_grants"
    )
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, null=True, blank=True, related_name="inbox_grants"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(member__isnull=False, team__isnull=True)
                | models.Q(member__isnull=True, team__isnull=False),
                name="inboxaccess_member_or_team",
            ),
            models.UniqueConstraint(
                fields=["account", "inbox", "member"],
                condition=models.Q(member__isnull=False),
                name="inboxaccess_member_unique",
            ),
            models.UniqueConstraint(
                fields=["account", "inbox", "team"],
                condition=models.Q(team__isnull=False),
                name="inboxaccess_team_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member or self.team} on {self.inbox}"


class Contact(models.Model):
    """A person outside the account, found or created by email address."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    owner = models.ForeignKey(
        Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="owned_contacts"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [models.UniqueConstraint("account", Lower("email"), name="contact_email_unique")]

    def __str__(self) -> str:
        return self.name or self.email


class ContactAddress(models.Model):
    """Another address of a contact, kept when a contact of that address was merged into it (H6).

    Mail from it is logged to this contact (`inboxes/contact_merge.py`); no contact has it as its own.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="addresses")
    email = models.EmailField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [models.UniqueConstraint("account", Lower("email"), name="contactaddress_email_unique")]
        indexes = [models.Index(fields=["account", "contact"], name="contactaddress_contact")]

    def __str__(self) -> str:
        return self.email


class ContactMerge(models.Model):
    """A contact merged into another: who merged which, when (H6); shown on the kept contact's page."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="merges")
    # The merged contact as it was: its row is gone.
    merged_contact_id = models.PositiveBigIntegerField()
    merged_email = models.EmailField(max_length=254)
    merged_name = models.CharField(max_length=200, blank=True)
    conversations = models.PositiveIntegerField(default=0)
    by = models.ForeignKey(Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    by_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        indexes = [models.Index(fields=["account", "contact", "-created_at"], name="contactmerge_contact")]

    def __str__(self) -> str:
        return f"{self.merged_email} merged into {self.contact_id}"


class Conversation(models.Model):
    """A thread of messages with one contact in one inbox."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    # No index of its own: every index of the table starts with the account (issue 18).
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="conversations", db_index=False
    )
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="conversations")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="conversations")
    subject = models.CharField(max_length=998, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="assigned_conversations"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_message_at = models.DateTimeField(default=timezone.now)
    # A machine's mail started it (its first message's automated_reason): nothing automatic answers it.
    automated_reason = models.CharField(max_length=200, blank=True)

    objects = ScopedManager(account="account")

    class Meta:
        indexes = [
            # The per-status views of H1, newest first, with keyset paging on (last_message_at, id). Every
            # list names a status: an index of the inbox alone went unused (issue 18).
            models.Index(
                fields=["account", "inbox", "status", "-last_message_at", "-id"],
                name="conversation_inbox_status",
            ),
            models.Index(fields=["account", "contact"], name="conversation_contact"),
            # The Unassigned view and its count (H1), and the conversations automatic assignment waits on.
            models.Index(
                fields=["account", "inbox", "-last_message_at", "-id"],
                condition=models.Q(status="open", assignee__isnull=True),
                name="conversation_unassigned",
            ),
            # Open conversations per assignee in an inbox: the load automatic assignment balances (D7).
            models.Index(
                fields=["account", "inbox", "assignee"],
                condition=models.Q(status="open", assignee__isnull=False),
                name="conversation_open_assignee",
            ),
            # The sidebar's and the views' counts (H1): one index-only scan of the open conversations.
            models.Index(
                fields=["account", "inbox", "assignee"],
                condition=models.Q(status="open"),
                name="conversation_open_counts",
            ),
            # Assigned to me across every inbox, newest first, with keyset paging (H1).
            models.Index(
                fields=["account", "assignee", "-last_message_at", "-id"],
                condition=models.Q(status="open"),
                name="conversation_assignee_recent",
            ),
        ]

    def __str__(self) -> str:
        return self.subject or f"Conversation {self.pk}"


NEW_CONVERSATION_NOTE = (
    "No reply token, In-Reply-To or References matched a message in this inbox, "
    "so it started a new conversation."
)


def from_header_note(email: str) -> str:
    """The attribution of a message logged to its From sender, in words (the common case)."""
    return f"Logged to the sender in the From header, {email}."


class Message(models.Model):
    """One message of a conversation, with how it was threaded and to whom it was attributed."""

    class Direction(models.TextChoices):
        INCOMING = "incoming", "Incoming"
        OUTGOING = "outgoing", "Outgoing"
        # An agent's internal note (H4): shown to the team in the thread, never emailed.
        NOTE = "note", "Internal note"

    class SenderRole(models.TextChoices):
        CONTACT = "contact", "Contact"
        # A reply from an address that is not the conversation's contact: joins the thread flagged.
        DIFFERENT_SENDER = "different_sender", "Different sender"

    class ThreadedBy(models.TextChoices):
        REPLY_TOKEN = "reply_token", "Reply address token"
        IN_REPLY_TO = "in_reply_to", "In-Reply-To header"
        REFERENCES = "references", "References header"
        EARLIER_REPLY = "earlier_reply", "Replies that arrived first"
        NEW_CONVERSATION = "new_conversation", "New conversation"

    class AttributedBy(models.TextChoices):
        FROM = "from", "From header"
        FORWARDED_BLOCK = "forwarded_block", "Original sender of a member's forward"
        FORWARDER_C8_OFF = "forwarder_c8_off", "Member who forwarded it"
        STRANGER_FORWARD = "stranger_forward", "Forward from a non-member"

    class AuthVerdict(models.TextChoices):
        # Blank on outgoing messages and on mail received before sender authentication (G8).
        AUTHENTICATED = "authenticated", "Authenticated"
        NOT_VERIFIED = "not_verified", "Not verified"

    class DeliveryState(models.TextChoices):
        # Blank on incoming messages.
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        # Accepted by the smarthost, then returned by the recipient's side (a bounce, RFC 3464).
        BOUNCED = "bounced", "Bounced"

    # No index of its own: every index of the table starts with the account (issue 18).
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="messages", db_index=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="messages")
    # The RFC Message-ID without angle brackets; operators and scripts rely on this field.
    message_id = models.CharField(max_length=998, blank=True)
    direction = models.CharField(max_length=20, choices=Direction.choices, default=Direction.INCOMING)
    from_name = models.CharField(max_length=200, blank=True)
    from_email = models.EmailField(max_length=254, blank=True)
    sender_role = models.CharField(max_length=20, choices=SenderRole.choices, default=SenderRole.CONTACT)
    to = models.JSONField(default=list, blank=True)
    cc = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True, help_text="Sanitized by inboxhub.lib.html before it is stored.")
    html_omitted = models.CharField(
        max_length=300, blank=True, help_text="Why the HTML version is not shown."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    threaded_by = models.CharField(max_length=20, choices=ThreadedBy.choices)
    # How it was threaded and attributed, in words (`threading_note`, `attribution_note`). Stored only
    # when they say more than the common case, which is written out on reading (issue 18: the same two
    # sentences on most of 300,000 rows).
    threading_detail = models.TextField(blank=True, db_column="threading_note")
    attributed_by = models.CharField(max_length=20, choices=AttributedBy.choices)
    attribution_detail = models.TextField(blank=True, db_column="attribution_note")
    # What was read from a forward (client, original sender, subject, date, CCs), also a stranger's.
    forwarded_original = models.JSONField(null=True, blank=True)
    skipped_attachments = models.JSONField(default=list, blank=True)
    inbound = models.ForeignKey(
        "channels_conn.InboundMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # message_inbound: only rows that have one
    )
    # Sender authentication (G8): the verdict on the From domain, its reason in words
    # ("dkim=pass (acme.example, aligned)", "spf=fail", "temperror") and every check's result, stored
    # as only what these fields do not say (read `auth_details`).
    auth_verdict = models.CharField(max_length=20, choices=AuthVerdict.choices, blank=True)
    auth_reason = models.TextField(blank=True)
    auth_results = models.JSONField(null=True, blank=True)
    # The From domain's DMARC policy is reject or quarantine and the message failed it: kept, flagged.
    spoofing_suspected = models.BooleanField(default=False)
    # The member whose address the From names when the sender is not verified as them.
    claimed_member = models.ForeignKey(
        Membership,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # message_claimed_member: only rows that have one
    )
    # Why a machine sent it (a bounce, an auto-reply, list mail), or "" (RFC 3834).
    automated_reason = models.CharField(max_length=200, blank=True)
    # Outgoing replies (H3): the headers sent, and how the delivery through the smarthost went.
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.TextField(blank=True)
    reply_to = models.CharField(max_length=320, blank=True)
    delivery_state = models.CharField(max_length=10, choices=DeliveryState.choices, blank=True)
    delivery_error = models.TextField(blank=True)
    delivery_attempts = models.PositiveSmallIntegerField(default=0)
    # When a run took the reply: a claim a worker left behind past the time limit may be taken over.
    delivery_claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    sent_by = models.ForeignKey(
        Membership,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sent_messages",
        db_index=False,  # message_sent_by: only rows that have one
    )

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "inbox", "message_id"],
                condition=~models.Q(message_id=""),
                name="message_id_unique_per_inbox",
            )
        ]
        indexes = [
            models.Index(fields=["account", "conversation", "created_at"], name="message_conversation_time"),
            # The reply sweep across accounts reads only replies still on their way: a small index.
            models.Index(
                fields=["delivery_state"],
                condition=models.Q(delivery_state__in=["queued", "sending"]),
                name="message_delivery_pending",
            ),
            # What a deleted spool row or member sets to null (the spool's pruning, a member removed)
            # is found on an index of only the rows that name one: incoming mail names no sender,
            # pruned mail no spool row, and few messages a claimed member (issue 18).
            models.Index(
                fields=["inbound"], condition=models.Q(inbound__isnull=False), name="message_inbound"
            ),
            models.Index(
                fields=["sent_by"], condition=models.Q(sent_by__isnull=False), name="message_sent_by"
            ),
            models.Index(
                fields=["claimed_member"],
                condition=models.Q(claimed_member__isnull=False),
                name="message_claimed_member",
            ),
        ]

    def __str__(self) -> str:
        return self.subject or f"Message {self.pk}"

    @property
    def threading_note(self) -> str:
        common = (
            self.direction == self.Direction.INCOMING and self.threaded_by == self.ThreadedBy.NEW_CONVERSATION
        )
        if self.threading_detail or not common:
            return self.threading_detail
        return NEW_CONVERSATION_NOTE

    @property
    def attribution_note(self) -> str:
        common = self.direction == self.Direction.INCOMING and self.attributed_by == self.AttributedBy.FROM
        if self.attribution_detail or not common:
            return self.attribution_detail
        return from_header_note(self.from_email)

    @property
    def is_different_sender(self) -> bool:
        return self.sender_role == self.SenderRole.DIFFERENT_SENDER

    @property
    def is_sender_authenticated(self) -> bool:
        return self.auth_verdict == self.AuthVerdict.AUTHENTICATED

    @property
    def auth_details(self) -> dict | None:
        """The sender authentication's details whole, as `AuthVerdict.as_dict` gives them (G8).

        Stored since issue 18 as only what the other fields do not say (`AuthVerdict.stored`); rows
        stored before keep the whole dictionary, which has a label.
        """
        if not self.auth_verdict or self.auth_results is None:
            return None
        if "label" in self.auth_results:
            return self.auth_results
        return stored_verdict(
            self.auth_results,
            authenticated=self.is_sender_authenticated,
            reason=self.auth_reason,
            spoofing_suspected=self.spoofing_suspected,
            from_email=self.from_email,
        ).as_dict()


def attachment_storage_key(instance: "Attachment", filename: str) -> str:
    """A generated key: the mail's filename never reaches the storage (B7)."""
    return f"attachments/{instance.account_id}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    """A file of a message, stored under a generated key and always served as a download."""

    # Unguessable ids in attachment URLs; membership is still checked on every download.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_storage_key, max_length=200)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_id = models.CharField(max_length=255, blank=True)
    inline = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        indexes = [models.Index(fields=["account", "message"], name="attachment_message")]
        ordering = ["created_at", "filename"]

    def __str__(self) -> str:
        return self.filename


class ThreadKey(models.Model):
    """A Message-ID an incoming message named (In-Reply-To, References) and the conversation it joined (G3).

    A parent that arrives after its reply finds the reply's conversation under its own Message-ID.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="+")
    message_id = models.CharField(max_length=998)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="thread_keys")

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "inbox", "message_id"], name="thread_key_unique_per_inbox"
            )
        ]
        indexes = [models.Index(fields=["account", "conversation"], name="thread_key_conversation")]

    def __str__(self) -> str:
        return f"<{self.message_id}>"


class ConversationEvent(models.Model):
    """One entry of a conversation's activity: who did what, when (H4); `actor` is None for the system."""

    class Kind(models.TextChoices):
        ASSIGNED = "assigned", "Assigned"
        UNASSIGNED = "unassigned", "Unassigned"
        CLOSED = "closed", "Closed"
        REOPENED = "reopened", "Reopened"
        NOTE_ADDED = "note_added", "Note added"
        REPLY_SENT = "reply_sent", "Reply sent"
        REPLY_FAILED = "reply_failed", "Reply failed"
        REPLY_BOUNCED = "reply_bounced", "Reply bounced"
        TICKET_CREATED = "ticket_created", "Ticket created"
        TICKET_MOVED = "ticket_moved", "Ticket moved"
        TICKET_PRIORITY = "ticket_priority", "Ticket priority set"
        TICKET_OWNER = "ticket_owner", "Ticket owner set"
        MERGED = "merged", "Merged"
        CONTACT_MERGED = "contact_merged", "Contact merged"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Names as they were (a member removed later still reads right), ids, the automatic decision's reason.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        indexes = [
            models.Index(
                fields=["account", "conversation", "-created_at", "-id"], name="conversationevent_recent"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.conversation_id})"


class ReadState(models.Model):
    """When a member last opened a conversation: a message newer than that shows it unread to them (H1).

    One row per member and conversation they opened, written by an upsert (`inboxes/read_state.py`).
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="read_states")
    read_at = models.DateTimeField()

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "member", "conversation"], name="readstate_member_conversation_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member} read {self.conversation} at {self.read_at:%Y-%m-%d %H:%M}"


class Presence(models.Model):
    """A member on a conversation's page just now, viewing or writing a reply (issue 17, "Who else is here").

    One row per member and conversation, written by an upsert on each heartbeat of the thread page
    and marked left when the page is left (`inboxes/presence.py`); a row older than the expiry is ignored.
    In the database, not the cache: `make run` without Redis has one cache per web process.
    """

    class State(models.TextChoices):
        VIEWING = "viewing", "Viewing"
        TYPING = "typing", "Writing a reply"
        LEFT = "left", "Left the page"  # shown to nobody; holds off a heartbeat that arrives late

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.VIEWING)
    seen_at = models.DateTimeField()

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "member", "conversation"], name="presence_member_conversation_unique"
            )
        ]
        # Who is on a conversation now: the rows of one conversation seen since the expiry.
        indexes = [models.Index(fields=["account", "conversation", "seen_at"], name="presence_conversation")]

    def __str__(self) -> str:
        return f"{self.member} {self.state} {self.conversation} at {self.seen_at:%H:%M:%S}"


class LiveStamp(models.Model):
    """A change counter that open lists and threads poll (H5), kept here only without Redis.

    `conversation_id` 0 counts the account's changes (its lists and counts), any other value that
    conversation's (its thread). Bumped after each change commits (`inboxes/live.py`); with
    REDIS_URL the same counters live in Redis and this table stays empty.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    # No foreign key: a counter is read by id alone and never joined.
    conversation_id = models.BigIntegerField(default=0)
    value = models.BigIntegerField(default=0)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "conversation_id"], name="livestamp_account_conversation"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.conversation_id}: {self.value}"
