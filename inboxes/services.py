"""State changes for inboxes: create one with its fallback address, rename it, set its access (B2, B5, E1)."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from channels_conn.services import create_fallback_channel
from inboxes.activity import assignment_event, record_event
from inboxes.locking import lock_inbox
from inboxes.models import Contact, Conversation, ConversationEvent, Inbox, InboxAccess
from inboxes.notifications import notify_assignment
from inboxes.permissions import (
    ConversationAction,
    can_act_in_inbox,
    create_inbox_refusal,
    require_conversation_action,
)
from inboxhub.audit import record_change
from inboxhub.lib.db import lock_row
from inboxhub.models import Account, Membership
from inboxhub.permissions import assert_same_account, require


@transaction.atomic
def create_inbox(account: Account, *, name: str, is_default: bool = False) -> Inbox:
    """Create an inbox with its fallback email channel and address (A1, E1)."""
    inbox = Inbox.objects.create(account=account, name=name, is_default=is_default)
    create_fallback_channel(inbox)
    return inbox


# --- inbox settings: rename, access list, new inboxes (B2, B5, E1, A3) ---

INBOX_NAME_MAX_LENGTH = 100


def clean_inbox_name(account: Account, name: str, *, exclude: Inbox | None = None) -> str:
    """The name trimmed, or ValidationError: required, at most 100 characters, unique in the account (B2)."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the inbox a name."})
    if len(name) > INBOX_NAME_MAX_LENGTH:
        raise ValidationError({"name": f"Inbox names are at most {INBOX_NAME_MAX_LENGTH} characters."})
    clash = Inbox.objects.filter(account=account, name__iexact=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise ValidationError({"name": "Another inbox already has this name."})
    return name


@transaction.atomic
def rename_inbox(inbox: Inbox, *, name: str, by: Membership) -> Inbox:
    """Rename an inbox (B2)."""
    assert_same_account(by, inbox)
    require(by, "manage_inboxes")
    name = clean_inbox_name(inbox.account, name, exclude=inbox)
    if name != inbox.name:
        previous, inbox.name = inbox.name, name
        try:
            with transaction.atomic():
                inbox.save(update_fields=["name"])
        except IntegrityError:
            raise ValidationError({"name": "Another inbox already has this name."}) from None
        record_change(by, inbox, "inbox_renamed", name=name, previous=previous)
    return inbox


def _check_access(access: str, members, teams) -> None:
    if access not in Inbox.Access.values:
        raise ValidationError({"access": "Choose who has access to this inbox."})
    if access == Inbox.Access.SPECIFIC and not members and not teams:
        raise ValidationError(
            {"access": "Choose at least one user or team, or make the inbox available to everyone."}
        )


def _apply_access(inbox: Inbox, access: str, members, teams) -> dict:
    """Store the inbox's access and its list; the audit entry's fields that describe them."""
    if inbox.access != access:
        inbox.access = access
        inbox.save(update_fields=["access"])
    InboxAccess.objects.filter(account=inbox.account, inbox=inbox).delete()
    if access != Inbox.Access.SPECIFIC:
        return {"access": access, "members": [], "teams": []}
    grants = [InboxAccess(account=inbox.account, inbox=inbox, member=m) for m in members]
    grants += [InboxAccess(account=inbox.account, inbox=inbox, team=t) for t in teams]
    InboxAccess.objects.bulk_create(grants)
    return {"access": access, "members": sorted(m.pk for m in members), "teams": sorted(t.pk for t in teams)}


@transaction.atomic
def set_inbox_access(inbox: Inbox, *, access: str, members=(), teams=(), by: Membership) -> Inbox:
    """Make an inbox available to everyone, or to specific users and teams (B5, B6, E2).

    Available to everyone clears the list: a list kept while it is ignored
    would look like a restriction that is not there.
    """
    members, teams = list(members), list(teams)
    assert_same_account(by, inbox, *members, *teams)
    require(by, "manage_inboxes")
    _check_access(access, members, teams)
    # Two saves at once leave one whole list, not a mix of both.
    lock_inbox(inbox.account_id, inbox.pk)
    record_change(by, inbox, "inbox_access_set", **_apply_access(inbox, access, members, teams))
    return inbox


@transaction.atomic
def add_inbox(account: Account, *, name: str, access: str, members=(), teams=(), by: Membership) -> Inbox:
    """Create another inbox with its access list and its own fallback address (E1, E2, A3)."""
    members, teams = list(members), list(teams)
    assert account.pk == by.account_id, "member and account differ"
    assert_same_account(by, *members, *teams)
    require(by, "manage_inboxes")
    # Lock the account row: two requests at once cannot both pass the one-inbox check of A3.
    Account.objects.select_for_update().filter(pk=account.pk).first()
    refusal = create_inbox_refusal(account)
    if refusal:
        raise ValidationError(refusal)
    name = clean_inbox_name(account, name)
    _check_access(access, members, teams)
    try:
        with transaction.atomic():
            inbox = create_inbox(account, name=name)
    except IntegrityError:
        raise ValidationError({"name": "Another inbox already has this name."}) from None
    record_change(by, inbox, "inbox_created", name=name, **_apply_access(inbox, access, members, teams))
    return inbox


@transaction.atomic
def set_conversation_status(
    conversation: Conversation, status: str, *, by: Membership | None = None
) -> Conversation:
    """Close or reopen a conversation (H4, B6, B7); `by` is None when the system does it."""
    if status not in Conversation.Status.values:
        raise ValidationError({"status": "Choose open or closed."})
    if by is not None:
        assert_same_account(by, conversation)
        require_conversation_action(by, conversation, ConversationAction.STATUS)
    if conversation.status != status:
        previous, conversation.status = conversation.status, status
        conversation.save(update_fields=["status"])
        record_change(by, conversation, "conversation_status_set", status=status, previous=previous)
        kind = (
            ConversationEvent.Kind.CLOSED
            if status == Conversation.Status.CLOSED
            else ConversationEvent.Kind.REOPENED
        )
        record_event(conversation, kind, by=by)
    return conversation


# --- contacts: the owner that Contact owner mode assigns to (D6, H6) ---


@transaction.atomic
def set_contact_owner(contact: Contact, owner: Membership | None, *, by: Membership) -> Contact:
    """Set or clear the contact's owner, whom Contact owner mode gives its new conversations (D6, H6).

    Any member may own a contact, free seats included: D4 keeps free seats out of automatic
    assignment at routing time, not here.
    """
    assert_same_account(by, contact)
    if owner is not None:
        assert owner.account_id == contact.account_id, "contact and owner in different accounts"
    require(by, "manage_inboxes")
    # The row lock makes `previous` the owner this change replaced, even when two admins save at once.
    previous = (
        Contact.objects.select_for_update().filter(pk=contact.pk).values_list("owner_id", flat=True).get()
    )
    owner_id = owner.pk if owner is not None else None
    contact.owner = owner
    if owner_id != previous:
        contact.save(update_fields=["owner"])
        record_change(by, contact, "contact_owner_set", owner=owner_id, previous=previous)
    return contact


# --- assigning by hand (H4, B6, B7) ---


@transaction.atomic
def assign_conversation(
    conversation: Conversation, assignee: Membership | None, *, by: Membership
) -> Conversation:
    """Assign, reassign or unassign a conversation by hand (H4, B6, B7).

    Whoever may act in the inbox may assign it; a free-seat member only while
    nobody else is assigned (B7). The assignee must be able to act in the inbox.
    """
    assert_same_account(by, conversation)
    if assignee is not None:
        assert assignee.account_id == conversation.account_id, (
            "conversation and assignee in different accounts"
        )
    # The row lock: two agents taking the same conversation at once leave one assignee, not a mix,
    # and B7 reads the assignee in force.
    current = lock_row(
        Conversation.objects.select_related("inbox", "assignee__user").filter(
            account_id=conversation.account_id, pk=conversation.pk
        )
    )
    require_conversation_action(by, current, ConversationAction.ASSIGN)
    if assignee is not None and not can_act_in_inbox(assignee, current.inbox):
        name = assignee.user.full_name or assignee.user.email
        inbox = current.inbox.name
        raise ValidationError(
            {"assignee": f"{name} is not on the access list of {inbox}, so cannot work on it."}
        )
    previous = current.assignee
    assignee_id = assignee.pk if assignee is not None else None
    conversation.assignee = assignee
    if assignee_id != current.assignee_id:
        Conversation.objects.filter(account_id=conversation.account_id, pk=conversation.pk).update(
            assignee=assignee
        )
        record_change(
            by, conversation, "conversation_assigned", assignee=assignee_id, previous=current.assignee_id
        )
        assignment_event(current, assignee, previous, by=by).save()
        if assignee is not None:
            # Mailed once this commits, when they are away or not signed in (issue 17).
            notify_assignment(current, assignee, by=by)
    return conversation
