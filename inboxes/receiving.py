"""Receiving a parsed message in an inbox: whom it is logged to, its contact, conversation, attachments.

The ingest pipeline (`ingest/pipeline.py`) calls `receive_message` once per
recipient inbox; everything here runs inside the account's scope (G3, G4,
G6, C8, C9, G8).
"""

import functools
import hashlib
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from channels_conn.models import FallbackAddress, InboundMessage
from channels_conn.spool import CannotIngest
from inboxes import live
from inboxes.contact_merge import contact_for_address, create_contact, find_contact, is_address_of
from inboxes.models import (
    NEW_CONVERSATION_NOTE,
    Attachment,
    Contact,
    Conversation,
    Inbox,
    Message,
    from_header_note,
)
from inboxes.threads import (
    lock_thread,
    merge_conversation,
    named_in_inbox,
    named_message_ids,
    normalise_message_id,
    record_thread_keys,
    synthetic_message_id,
    thread_message,
    threading_ids,
)
from inboxhub.lib.html import sanitize_html
from inboxhub.lib.mail.authentication import AuthVerdict
from inboxhub.lib.mail.parsing import Address, ParsedAttachment, ParsedMessage, storable
from inboxhub.models import Account, Membership

FORWARDING_CLIENTS = {
    "gmail": "Gmail",
    "outlook": "Outlook",
    "apple_mail": "Apple Mail",
    "thunderbird": "Thunderbird",
    "yahoo": "Yahoo Mail",
    "rfc822": "an attached message (message/rfc822)",
}


# --- identity: who a message is logged to (C8, C9, G8, B12) ---


@dataclass
class Attribution:
    """Whom a message is logged to and what of it is shown, with the reason."""

    sender: Address
    attributed_by: str
    note: str
    subject: str
    text: str
    html: str
    to: list[Address]
    cc: list[Address]
    sent_at: datetime | None
    forwarded_original: dict | None = None
    notes: list[str] = field(default_factory=list)
    # The member an unverified sender claims to be (G8): shown as "sender not verified".
    claimed_member: Membership | None = None


@dataclass(frozen=True)
class MemberSender:
    """The member whose address a message's From names, and whether the verdict proves it is them."""

    member: Membership | None
    verified: bool

    @property
    def trusted(self) -> Membership | None:
        return self.member if self.verified else None

    @property
    def claimed(self) -> Membership | None:
        """The member an unverified sender claims to be."""
        return None if self.verified else self.member


def _domain_of(email: str) -> str:
    domain = email.rpartition("@")[2].strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def is_verified_as(verdict: AuthVerdict | None, email: str) -> bool:
    """Whether the verdict authenticates the domain of `email` (G8).

    The verdict's domain is the From domain that an aligned DKIM or SPF pass,
    a trusted network or a trusted relay vouched for; it must be the
    address's own domain, so a pass for another domain never counts.
    """
    if verdict is None or not verdict.authenticated or not verdict.domain or "@" not in email:
        return False
    return verdict.domain == _domain_of(email)


def _member_with_email(account_id: int, email: str) -> Membership | None:
    return (
        Membership.objects.filter(account_id=account_id, user__email__iexact=email, user__is_active=True)
        .select_related("user")
        .first()
    )


class MemberAddresses:
    """An account's active members by email, read at the first question: for one batch of mail.

    The ingest pipeline makes one per account and batch and drops it with the batch (issue 18): a
    member added or deactivated counts from the next batch. Matches as `user__email__iexact` does;
    where that could differ from Python's case folding (an address beyond ASCII), it asks the database.
    """

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self._by_email: dict[str, Membership] | None = None
        self._ascii = True  # every member's address is ASCII: the dictionary answers

    def get(self, email: str) -> Membership | None:
        if self._by_email is None:
            members = Membership.objects.filter(
                account_id=self.account_id, user__is_active=True
            ).select_related("user")
            by_email: dict[str, Membership] | None = {}
            for member in members:
                if not member.user.email.isascii():
                    by_email = None
                    break
                by_email.setdefault(member.user.email.upper(), member)
            self._by_email = by_email if by_email is not None else {}
            self._ascii = by_email is not None
        if not (self._ascii and email.isascii()):
            return _member_with_email(self.account_id, email)
        return self._by_email.get(email.upper())


def member_sender(
    account: Account,
    parsed: ParsedMessage,
    *,
    verdict: AuthVerdict | None,
    members: MemberAddresses | None = None,
) -> MemberSender:
    """Whether a message is a member's: the one check behind every trust in a member's mail (C8, G8).

    A From address alone is never enough: the member is trusted only when the
    sender is authenticated as the domain of their address. Anything that
    trusts a member's mail (recognising a forwarder; a reply by mail) asks here.
    `members`: the account's, already read (the ingest pipeline's batch).
    """
    if not parsed.sender.email:
        return MemberSender(None, verified=False)
    if members is not None:
        assert members.account_id == account.pk, "members of another account"
        member = members.get(parsed.sender.email)
    else:
        member = _member_with_email(account.pk, parsed.sender.email)
    return MemberSender(member, verified=member is not None and is_verified_as(verdict, parsed.sender.email))


def trusted_forwarding_member(
    account: Account, parsed: ParsedMessage, *, verdict: AuthVerdict | None
) -> Membership | None:
    """The member who forwarded this message when authenticated as them, or None (C8, G8)."""
    return member_sender(account, parsed, verdict=verdict).trusted


def _verdict_text(verdict: AuthVerdict | None) -> str:
    return verdict.label if verdict is not None else "not verified: no sender authentication was run"


def _address_text(address: Address) -> str:
    return f"{address.name} <{address.email}>" if address.name else address.email


def _forwarded_details(parsed: ParsedMessage, *, member: Membership | None) -> dict:
    original = parsed.forwarded
    return {
        "client": original.client,
        "client_name": FORWARDING_CLIENTS.get(original.client, original.client),
        "sender": {"name": original.sender.name, "email": original.sender.email},
        "subject": original.subject,
        "date": original.date.isoformat() if original.date else original.date_text,
        "to": [address.email for address in original.to],
        "cc": [address.email for address in original.cc],
        "forwarded_by": {"name": parsed.sender.name, "email": parsed.sender.email},
        "forwarded_by_member": member is not None,
        "note": _forwarder_note(parsed),
    }


def _forwarder_note(parsed: ParsedMessage) -> str:
    """What the forwarder wrote above the forwarded block: the forward's text without the original's."""
    whole = parsed.text_without_forward_header.strip()
    original = parsed.forwarded.text.strip()
    if not original:
        return whole
    return whole[: -len(original)].strip() if whole.endswith(original) else ""


def attribute_message(
    fallback_address: FallbackAddress | None,
    parsed: ParsedMessage,
    *,
    verdict: AuthVerdict | None,
    members: MemberAddresses | None = None,
) -> Attribution:
    """Decide whom a message is logged to: From, or a member's forward per the C8 switch (C8, C9, G6, G8).

    Reply-To is never identity, and the forwarded block counts only when a
    member forwarded it and the sender is authenticated as them; anyone
    else's "forward" stays theirs.
    """
    account = fallback_address.account if fallback_address else None
    own = Attribution(
        sender=parsed.sender,
        attributed_by=Message.AttributedBy.FROM,
        note=from_header_note(parsed.sender.email),
        subject=parsed.subject,
        text=parsed.text,
        html=parsed.html,
        to=parsed.to,
        cc=parsed.cc,
        sent_at=parsed.date,
    )
    reply_to = [a.email for a in parsed.reply_to if a.email and a.email != parsed.sender.email]
    if reply_to:
        own.notes.append(f"Reply-To ({', '.join(reply_to)}) is never used to identify the sender.")
    if account is None:
        return own
    sender = member_sender(account, parsed, verdict=verdict, members=members)
    own.claimed_member = sender.claimed
    if sender.claimed is not None:
        own.notes.append(
            f"The From header names the member {sender.claimed.user.full_name} ({parsed.sender.email}), "
            f"but the sender is {_verdict_text(verdict)}; it is handled as a stranger's mail."
        )
    original = parsed.forwarded
    if original is None:
        return own
    member = sender.trusted
    client = FORWARDING_CLIENTS.get(original.client, original.client)
    if member is None:
        own.attributed_by = Message.AttributedBy.STRANGER_FORWARD
        own.forwarded_original = _forwarded_details(parsed, member=None)
        claimed = original.sender.email or "an unreadable sender"
        why = (
            f"{parsed.sender.email} is a member's address but the sender is not verified as them"
            if sender.claimed is not None
            else f"{parsed.sender.email} is not a member of this account"
        )
        own.note = (
            f"Looks like a forward ({client}) of mail from {claimed}, but {why}, so it is logged to "
            f"{parsed.sender.email}. The detected original is shown, not trusted."
        )
        return own
    verified = f"The sender is {_verdict_text(verdict)} ({verdict.reason})."
    if not original.sender.email:
        own.forwarded_original = _forwarded_details(parsed, member=member)
        own.note = (
            f"Forwarded by the member {parsed.sender.email} ({client}), but the original sender could "
            f"not be read unambiguously, so it is logged to {parsed.sender.email}. {verified}"
        )
        return own
    forwarded = Attribution(
        sender=original.sender,
        attributed_by=Message.AttributedBy.FORWARDED_BLOCK,
        note=(
            f"Forwarded by the member {member.user.full_name} ({parsed.sender.email}) from {client}. "
            f"{verified} The inbox logs forwarded mail to the original sender, {original.sender.email}."
        ),
        subject=original.subject or parsed.subject,
        text=parsed.text_without_forward_header or original.text or parsed.text,
        html=original.html or parsed.html,
        to=original.to,
        # C9: the original CCs only, never those the forwarder added.
        cc=original.cc,
        sent_at=original.date or parsed.date,
        forwarded_original=_forwarded_details(parsed, member=member),
        notes=own.notes,
    )
    if not fallback_address.select_original_sender:
        forwarded.sender = Address(name=member.user.full_name, email=parsed.sender.email)
        forwarded.attributed_by = Message.AttributedBy.FORWARDER_C8_OFF
        forwarded.note = (
            f"Forwarded by the member {member.user.full_name} ({parsed.sender.email}) from {client}. "
            f"{verified} 'Select original sender of forwarded emails' is off for this inbox, so it is "
            f"logged to {parsed.sender.email}; the original sender was {original.sender.email}."
        )
    return forwarded


def _unless_common(note: str, common: str) -> str:
    """The note to store: nothing when it says only what the common case says (`Message.threading_note`)."""
    return "" if note == common else note


def _display_name(name: str) -> str:
    # A display name that looks like an address ("bob@customer.com" <x@evil>) must never pass for one.
    name = " ".join((name or "").split())
    return "" if "@" in name else name[:200]


# Inside a caller's transaction no savepoint of its own.
@transaction.atomic(savepoint=False)
def find_or_create_contact(account: Account, *, email: str, name: str = "") -> Contact:
    """The account's contact with this email, matched without regard to case; created when new."""
    email = email.strip().lower()
    assert email, "a contact needs an email address"
    # A merged contact's address names the contact it was merged into (H6).
    contact = find_contact(account, email)
    if contact is None:
        created = create_contact(account, email, name=_display_name(name))
        if created is not None:
            return created
        # Another worker created it, or a merge kept it as an address, since the read: committed now.
        contact = contact_for_address(account, email)
        if contact is None:
            raise IntegrityError(f"The contact of {email} was created and removed meanwhile; try again.")
    if not contact.name and _display_name(name):
        contact.name = _display_name(name)
        contact.save(update_fields=["name"])
    return contact


# --- new rows, written by hand (issue 18) ---

# Fields whose value the ORM stores as set when it is a str, int, bool or None.
_PLAIN_FIELDS = {
    models.CharField,
    models.EmailField,
    models.TextField,
    models.BooleanField,
    models.PositiveSmallIntegerField,
    models.ForeignKey,
}
_PLAIN_VALUES = {str, int, bool, type(None)}


@functools.cache
def _insert_parts(model: type[models.Model]) -> tuple[str, list[models.Field]]:
    """`INSERT INTO table (columns)` for a new row of the model, and its fields in that order."""
    meta = model._meta
    fields = [f for f in meta.local_concrete_fields if not f.primary_key and not f.generated]
    quote = connection.ops.quote_name
    return f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})", fields


def _row_values(instance: models.Model, fields: list[models.Field]) -> list:
    """Every field's value as the ORM prepares it (JSON, dates, choices); only a str, int, bool or
    None of a plain text, number or key field goes as set, which is what that preparation leaves."""
    values = []
    for model_field in fields:
        value = getattr(instance, model_field.attname)
        if type(model_field) not in _PLAIN_FIELDS or type(value) not in _PLAIN_VALUES:
            value = model_field.get_db_prep_save(model_field.pre_save(instance, add=True), connection)
        values.append(value)
    return values


def _saved(instance: models.Model, pk: int) -> None:
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias


def _insert(instance: models.Model) -> None:
    """Write a new row as `instance.save()` does, by one statement made once per model.

    The ORM built each message's INSERT anew, about a millisecond of CPU (issue 18). The account
    is one of the fields; no signal is connected to these models.
    """
    insert, fields = _insert_parts(type(instance))
    pk = connection.ops.quote_name(instance._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{insert} VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {pk}",
            _row_values(instance, fields),
        )
        _saved(instance, cursor.fetchone()[0])


def _insert_new_thread(conversation: Conversation, message: Message) -> None:
    """Write a new conversation and its first message, by one statement on PostgreSQL (a round
    trip less for most mail, issue 18): the conversation's INSERT as a data-modifying WITH, whose
    id the message's row takes."""
    if connection.vendor != "postgresql":
        _insert(conversation)
        message.conversation = conversation
        _insert(message)
        return
    quote = connection.ops.quote_name
    insert_conversation, conversation_fields = _insert_parts(Conversation)
    insert_message, message_fields = _insert_parts(Message)
    conversation_pk, message_pk = quote(Conversation._meta.pk.column), quote(Message._meta.pk.column)
    link = Message._meta.get_field("conversation")
    placeholders = [
        f"(SELECT {conversation_pk} FROM new_conversation)" if f is link else "%s"  # noqa: S608 - a name from the model
        for f in message_fields
    ]
    values = [
        value
        for f, value in zip(message_fields, _row_values(message, message_fields), strict=True)
        if f is not link
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH new_conversation AS ({insert_conversation} "
            f"VALUES ({', '.join(['%s'] * len(conversation_fields))}) RETURNING {conversation_pk}) "
            f"{insert_message} VALUES ({', '.join(placeholders)}) "
            f"RETURNING {message_pk}, {quote(link.column)}",
            [*_row_values(conversation, conversation_fields), *values],
        )
        message_id, conversation_id = cursor.fetchone()
    _saved(conversation, conversation_id)
    message.conversation = conversation
    _saved(message, message_id)


def _update_last_message_at(conversation: Conversation) -> None:
    """`save(update_fields=["last_message_at"])` by a statement made once, account filtered (issue 18)."""
    quote = connection.ops.quote_name
    meta = Conversation._meta
    pk, account, last = (quote(meta.get_field(name).column) for name in ("id", "account", "last_message_at"))
    value = meta.get_field("last_message_at").get_db_prep_save(conversation.last_message_at, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {last} = %s WHERE {account} = %s AND {pk} = %s",  # noqa: S608 - names from the model
            [value, conversation.account_id, conversation.pk],
        )


# --- attachments (B6, B7) ---


def clean_attachment_filename(name: str) -> str:
    """NFKC, without control or format characters, and without path parts (B7, CVE-2026-28289)."""
    name = unicodedata.normalize("NFKC", name or "")
    name = "".join(char for char in name if unicodedata.category(char) not in ("Cc", "Cf"))
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255] if name.strip(". ") else "attachment"


def _store_attachments(message: Message, attachments: list[ParsedAttachment]) -> list[dict]:
    """Store what fits the per-file and total limits; return what was skipped and why."""
    skipped = []
    total = 0
    for parsed in attachments:
        filename = clean_attachment_filename(parsed.filename)
        size = len(parsed.payload)
        if size > settings.ATTACHMENT_MAX_BYTES:
            skipped.append(
                {
                    "filename": filename,
                    "size": size,
                    "reason": f"larger than {settings.ATTACHMENT_MAX_BYTES} bytes",
                }
            )
            continue
        if total + size > settings.ATTACHMENTS_TOTAL_MAX_BYTES:
            skipped.append(
                {
                    "filename": filename,
                    "size": size,
                    "reason": f"all attachments together exceed {settings.ATTACHMENTS_TOTAL_MAX_BYTES} bytes",
                }
            )
            continue
        total += size
        attachment = Attachment(
            account_id=message.account_id,
            message=message,
            filename=filename,
            content_type=(parsed.content_type or "application/octet-stream")[:255],
            size=size,
            sha256=hashlib.sha256(parsed.payload).hexdigest(),
            content_id=(parsed.content_id or "")[:255],
            inline=parsed.inline,
        )
        # The name given here is ignored: attachment_storage_key generates the key.
        attachment.file.save("attachment", ContentFile(parsed.payload), save=False)
        attachment.save()
    return skipped


# --- receiving a message (G3, G4) ---


def _verdict_fields(verdict: AuthVerdict | None, *, from_email: str) -> dict:
    if verdict is None:
        return {}
    return {
        "auth_verdict": Message.AuthVerdict.AUTHENTICATED
        if verdict.authenticated
        else Message.AuthVerdict.NOT_VERIFIED,
        "auth_reason": verdict.reason,
        # Only what the message's other fields do not say (issue 18); `Message.auth_details` reads it.
        "auth_results": verdict.stored(from_email=from_email),
        "spoofing_suspected": verdict.spoofing_suspected,
    }


def _addresses(addresses: list[Address]) -> list[dict]:
    return [{"name": _display_name(a.name), "email": a.email} for a in addresses if a.email]


@dataclass(frozen=True)
class Received:
    message: Message
    # True only for the call that stored the message and started its conversation: route that one (D).
    started_conversation: bool = False


def _joins_transaction(function):
    """Run `function` as part of the caller's transaction, or in one of its own when there is none.

    No savepoint of its own inside a caller's transaction (two round trips a message, issue 18):
    work done before an error stays for the caller to roll back, as the ingest pipeline rolls back
    its row. Unlike `atomic(savepoint=False)`, a refusal raised before any write (CannotIngest)
    leaves the caller's transaction usable.
    """

    @functools.wraps(function)
    def in_transaction(*args, **kwargs):
        if connection.in_atomic_block:
            return function(*args, **kwargs)
        with transaction.atomic():
            return function(*args, **kwargs)

    return in_transaction


@_joins_transaction
def receive_message(
    inbox: Inbox,
    parsed: ParsedMessage,
    *,
    recipient: str,
    inbound: InboundMessage | None = None,
    verdict: AuthVerdict | None = None,
    fallback_address: FallbackAddress | None = None,
    members: MemberAddresses | None = None,
) -> Received:
    """Log one incoming message into its conversation, from the right contact (G3, G4, G6, C8, C9, G8).

    Idempotent: a message whose Message-ID this inbox already has is returned
    as it is (G4); a message without one gets an id derived from its bytes.
    `verdict` is the sender authentication of the raw message; without one,
    nobody's mail is trusted as a member's. `fallback_address` is the inbox's,
    with its account, and `members` the account's members, when the caller
    has already looked them up.
    """
    account = inbox.account
    # parse_message makes its fields storable; the verdict quotes header values too (a DKIM d=, a
    # relay's Authentication-Results), which PostgreSQL's text and JSON must be able to hold.
    verdict = storable(verdict)
    message_id = normalise_message_id(parsed.message_id) or synthetic_message_id(parsed, inbound)
    in_reply_to, references = named_message_ids(parsed)
    ids = threading_ids(parsed, message_id)
    # Until this transaction ends, no other worker threads a message naming any of these ids (G3, G4).
    lock_thread(inbox, ids)
    # One reading, after the lock, both for the duplicate check and for threading.
    named = named_in_inbox(inbox, ids)
    if any(rank == 0 and named_id == message_id for named_id, _, rank in named):
        return Received(Message.objects.filter(account=account, inbox=inbox, message_id=message_id).get())
    if fallback_address is None:
        fallback_address = (
            FallbackAddress.objects.filter(account=account, channel__inbox=inbox)
            .select_related("account")
            .first()
        )
    attribution = attribute_message(fallback_address, parsed, verdict=verdict, members=members)
    sender = attribution.sender
    if not sender.email:
        raise CannotIngest(
            "The sender could not be read unambiguously from the From header; "
            "the message was not logged to anyone."
        )
    threading = thread_message(inbox, parsed, recipient=recipient, message_id=message_id, named=named)
    conversation = threading.conversation
    for other in threading.merged:
        merge_conversation(conversation, other)
    sender_role = Message.SenderRole.CONTACT
    now = timezone.now()
    notes = [attribution.note, *attribution.notes]
    if conversation is None:
        contact = find_or_create_contact(account, email=sender.email, name=sender.name)
        conversation = Conversation(
            account=account,
            inbox=inbox,
            contact=contact,
            subject=attribution.subject[:998],
            created_at=now,
            last_message_at=now,
            automated_reason=parsed.automated[:200],
        )
    elif not is_address_of(conversation.contact, sender.email):
        sender_role = Message.SenderRole.DIFFERENT_SENDER
        notes.insert(
            0,
            f"{sender.email} is not this conversation's contact ({conversation.contact.email}): "
            "the message joins the thread flagged as from a different sender, "
            "never as the contact or an agent.",
        )
    sanitized = sanitize_html(attribution.html)
    message = Message(
        account=account,
        conversation=conversation,
        inbox=inbox,
        message_id=message_id,
        direction=Message.Direction.INCOMING,
        from_name=_display_name(sender.name),
        from_email=sender.email,
        sender_role=sender_role,
        to=_addresses(attribution.to),
        cc=_addresses(attribution.cc),
        subject=attribution.subject[:998],
        text=attribution.text,
        html=sanitized.html,
        html_omitted=sanitized.omitted,
        sent_at=attribution.sent_at,
        created_at=now,
        threaded_by=threading.threaded_by,
        threading_detail=_unless_common(threading.note, NEW_CONVERSATION_NOTE),
        attributed_by=attribution.attributed_by,
        attribution_detail=_unless_common(" ".join(notes), from_header_note(sender.email)),
        forwarded_original=attribution.forwarded_original,
        inbound=inbound,
        **_verdict_fields(verdict, from_email=sender.email),
        claimed_member=attribution.claimed_member,
        automated_reason=parsed.automated[:200],
    )
    if threading.conversation is None:
        _insert_new_thread(conversation, message)
    else:
        _insert(message)
    record_thread_keys(conversation, [*in_reply_to, *references])
    live.note_change(account.pk, conversation.pk)  # open lists and the thread show it (H5)
    skipped = _store_attachments(message, parsed.attachments)
    if skipped:
        message.skipped_attachments = skipped
        message.save(update_fields=["skipped_attachments"])
    if threading.conversation is None:
        return Received(message, started_conversation=True)
    if conversation.last_message_at < now:
        conversation.last_message_at = now
        _update_last_message_at(conversation)
    return Received(message)
