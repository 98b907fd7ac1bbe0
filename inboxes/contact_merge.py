"""Two contacts of one person become one (H6): whose mail is whose, and the merge itself.

A merged contact's address stays as another address of the kept contact
(`ContactAddress`), so mail from it keeps landing on the kept contact. The
receiving side asks `contact_for_address`, which waits for a merge in progress
on the contact it found and then reads again: a message from the merged
address is never logged to a contact that is about to disappear, nor to a new
contact of that address.

Locks (PostgreSQL): the merge takes both contacts `FOR UPDATE`; mail takes
the contact it logs to `FOR KEY SHARE`, which never waits for other mail or
an owner change, only for a merge (and a merge for the mail in flight).
"""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from inboxes.activity import event, name_of
from inboxes.models import Contact, ContactAddress, ContactMerge, Conversation, ConversationEvent, Message
from inboxhub.audit import record_change
from inboxhub.models import Account, Membership
from inboxhub.permissions import assert_same_account, require

ALREADY_MERGED = "{other} was already merged into another contact."
MERGED_AWAY = "This contact was merged into another one meanwhile; open that contact to merge."
SAME_CONTACT = "Choose another contact: a contact cannot be merged into itself."


# --- whose mail is whose ---


def find_contact(account: Account, email: str) -> Contact | None:
    """The contact whose address this is, its own or one kept from a merge, locked against a merge.

    One read: a contact merged away while the lock waited is not returned; `contact_for_address`
    then reads again, `create_contact` writes nothing for its address.
    """
    if connection.vendor != "postgresql":
        # SQLite runs one writer at a time (transaction_mode IMMEDIATE): no merge can interleave.
        return contact_with_address(account, email)
    # By hand, with lower(): the expression the unique indexes of both tables are built on. The
    # ORM's raw() cost as much CPU again as the statement (issue 18).
    fields = Contact._meta.concrete_fields
    quote = connection.ops.quote_name
    query = (
        f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {Contact._meta.db_table} "  # noqa: S608
        "WHERE account_id = %s AND (lower(email) = lower(%s) OR id IN ("
        f"SELECT contact_id FROM {ContactAddress._meta.db_table} "
        "WHERE account_id = %s AND lower(email) = lower(%s))"
        ") LIMIT 1 FOR KEY SHARE"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [account.pk, email, account.pk, email])
        row = cursor.fetchone()
    return Contact.from_db(connection.alias, [f.attname for f in fields], row) if row else None


def contact_for_address(account: Account, email: str) -> Contact | None:
    """The contact mail from this address is logged to, or None when nobody has it (G3, H6).

    Call inside the transaction that logs the mail: the contact stays until it commits. A
    contact found by one read may be merged away while the lock waits; the next read, a new
    snapshot, finds the address on the contact it was merged into.
    """
    for _ in range(2):
        contact = find_contact(account, email)
        if contact is not None:
            return contact
    return None


def create_contact(account: Account, email: str, *, name: str) -> Contact | None:
    """A new contact of this address, or None when a contact has it, its own or one kept from a merge.

    One statement, which sees what committed before it: a contact another worker created since
    the caller's read, or an address a merge kept, makes it write nothing (H6). No error either,
    so no savepoint: the caller reads again.
    """
    contact = Contact(account=account, email=email, name=name, created_at=timezone.now())
    # Fields left None (the owner) are left to the column: NULL.
    fields = [f for f in Contact._meta.concrete_fields if getattr(contact, f.attname) is not None]
    values = [f.get_db_prep_save(getattr(contact, f.attname), connection) for f in fields]
    quote = connection.ops.quote_name
    query = (
        f"INSERT INTO {Contact._meta.db_table} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"SELECT {', '.join(['%s'] * len(fields))} WHERE NOT EXISTS ("
        f"SELECT 1 FROM {ContactAddress._meta.db_table} WHERE account_id = %s AND lower(email) = lower(%s)"
        ") ON CONFLICT DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [*values, account.pk, email])
        row = cursor.fetchone()
    if row is None:
        return None
    contact.pk = row[0]
    contact._state.adding = False
    contact._state.db = connection.alias
    return contact


def contact_with_address(account: Account, email: str) -> Contact | None:
    """The account's contact with this address, its own or one kept from a merge; no lock (a form's read)."""
    merged = ContactAddress.objects.filter(account=account, email__iexact=email).values("contact_id")
    return (
        Contact.objects.filter(account=account)
        .filter(Q(email__iexact=email) | Q(pk__in=merged))
        .select_related("owner__user")
        .first()
    )


def contacts_named(account: Account, name: str, *, but: Contact) -> QuerySet[Contact]:
    """The account's other contacts of this name, regardless of case."""
    return (
        Contact.objects.filter(account=account, name__iexact=name)
        .exclude(pk=but.pk)
        .select_related("owner__user")
        .order_by("pk")
    )


def is_address_of(contact: Contact, email: str) -> bool:
    """Whether the address is the contact's own or one kept from a contact merged into it."""
    email = email.strip().lower()
    if contact.email.lower() == email:
        return True
    return ContactAddress.objects.filter(
        account_id=contact.account_id, contact=contact, email__iexact=email
    ).exists()


def addresses_of(contact: Contact) -> list[str]:
    """The addresses kept from contacts merged into this one, in the order they were added."""
    return list(
        ContactAddress.objects.filter(account_id=contact.account_id, contact=contact)
        .order_by("created_at", "pk")
        .values_list("email", flat=True)
    )


# --- the merge ---


def _lock_both(kept: Contact, other: Contact) -> dict[int, Contact]:
    """Both rows locked in id order, so two merges of one pair never deadlock; a merged one is missing."""
    rows = Contact.objects.select_for_update().filter(account_id=kept.account_id, pk__in=[kept.pk, other.pk])
    return {row.pk: row for row in rows.order_by("pk")}


def _move_related(kept: Contact, other: Contact) -> None:
    """Everything that points at `other` points at `kept`: found through the model's relations.

    Apps above this one may add relations to Contact; they move without being imported. A row
    that cannot move (a unique pair `kept` already has) stays and goes with `other`.
    """
    for relation in Contact._meta.related_objects:
        if relation.many_to_many:
            continue
        manager = relation.related_model._base_manager
        if relation.one_to_one and manager.filter(**{relation.field.name: kept}).exists():
            continue
        try:
            with transaction.atomic():
                manager.filter(**{relation.field.name: other}).update(**{relation.field.name: kept})
        except IntegrityError:
            continue


def _own_messages_again(kept: Contact, emails: list[str]) -> int:
    """Messages flagged as a different sender that came from one of the kept contact's addresses."""
    sender = Q()
    for email in emails:
        sender |= Q(from_email__iexact=email)
    return Message.objects.filter(
        sender,
        account_id=kept.account_id,
        conversation__contact=kept,
        sender_role=Message.SenderRole.DIFFERENT_SENDER,
    ).update(sender_role=Message.SenderRole.CONTACT)


def _label(contact: Contact) -> str:
    return f"{contact.name} ({contact.email})" if contact.name else contact.email


@transaction.atomic
def merge_contacts(kept: Contact, other: Contact, *, by: Membership) -> ContactMerge:
    """Merge `other` into `kept`: its conversations, addresses and history move, its address stays (H6).

    Admins only: a contact's conversations may sit in inboxes an agent cannot
    see, and admins see every inbox (B6), so they see all that moves. The
    kept contact's name and owner stay; empty ones are filled from `other`.
    """
    assert_same_account(by, kept, other)
    require(by, "manage_inboxes")
    if kept.pk == other.pk:
        raise ValidationError({"email": SAME_CONTACT})
    locked = _lock_both(kept, other)
    if kept.pk not in locked:
        raise ValidationError({"email": MERGED_AWAY})
    if other.pk not in locked:
        raise ValidationError({"email": ALREADY_MERGED.format(other=other)})
    kept, other = locked[kept.pk], locked[other.pk]
    # Held by the lock on `other`: no mail can start a conversation of it until this commits.
    moved = list(
        Conversation.objects.filter(account_id=kept.account_id, contact=other).values_list("pk", "subject")
    )
    _move_related(kept, other)
    ContactAddress.objects.create(account_id=kept.account_id, contact=kept, email=other.email.lower())
    fields = [name for name in ("name", "owner") if not getattr(kept, name) and getattr(other, name)]
    for name in fields:
        setattr(kept, name, getattr(other, name))
    if fields:
        kept.save(update_fields=fields)
    _own_messages_again(kept, [kept.email, *addresses_of(kept)])
    now = timezone.now()
    merge = ContactMerge.objects.create(
        account_id=kept.account_id,
        contact=kept,
        merged_contact_id=other.pk,
        merged_email=other.email,
        merged_name=other.name,
        conversations=len(moved),
        by=by,
        by_name=name_of(by),
        created_at=now,
    )
    details = {"merged": other.pk, "merged_email": other.email, "kept": kept.pk, "kept_email": kept.email}
    ConversationEvent.objects.bulk_create(
        event(
            Conversation(pk=pk, account_id=kept.account_id),
            ConversationEvent.Kind.CONTACT_MERGED,
            by=by,
            at=now,
            subject=subject,
            merged_contact=_label(other),
            kept_contact=_label(kept),
            **details,
        )
        for pk, subject in moved
    )
    record_change(by, kept, "contact_merged", conversations=len(moved), **details)
    other.delete()
    return merge


def merges_of(contact: Contact) -> list[ContactMerge]:
    """The contacts merged into this one, newest first: who merged which, when."""
    return list(
        ContactMerge.objects.filter(account_id=contact.account_id, contact=contact).order_by(
            "-created_at", "-pk"
        )
    )
