"""Whether a member is signed in, and whether they want mail about conversations assigned to them (issue 17).

"Signed in" is cheap to know and needs no session scan: `tenancy.member_required`
stamps `Membership.last_seen_at` on the member's answered requests in the
account (not 4xx/5xx: probing someone else's ids is no presence), at most once
a minute (one UPDATE; none for the other requests of that minute); signing out
clears it. A member counts as signed in while a request of theirs in this
account is at most SIGNED_IN_WINDOW old. An open inbox tab keeps itself fresh
by its own polling; a closed laptop lid, an expired session or a member
working only in another of their accounts goes quiet within the window.
"""

from datetime import datetime, timedelta

from django.contrib.auth.signals import user_logged_out
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from django_scopes import scopes_disabled

from inboxhub.audit import record_change
from inboxhub.models import Membership
from inboxhub.permissions import assert_same_account

SIGNED_IN_WINDOW = timedelta(minutes=10)
# Requests within this of the last stamp write nothing: a page and its htmx calls cost no write each.
SEEN_RESOLUTION = timedelta(minutes=1)
AWAY = Membership.Availability.AWAY


def note_seen(member: Membership, *, now: datetime | None = None) -> None:
    """Remember that the member made a request in their account just now, to the minute."""
    now = now or timezone.now()
    if member.last_seen_at is not None and now - member.last_seen_at < SEEN_RESOLUTION:
        return
    Membership.objects.filter(pk=member.pk).update(last_seen_at=now)
    member.last_seen_at = now


def is_signed_in(member: Membership, *, now: datetime | None = None) -> bool:
    """Whether the member made a request in this account within SIGNED_IN_WINDOW and has not signed out."""
    now = now or timezone.now()
    return member.last_seen_at is not None and now - member.last_seen_at <= SIGNED_IN_WINDOW


@receiver(user_logged_out, dispatch_uid="inboxhub.notifications.forget_seen")
def forget_seen(sender, request, user, **kwargs) -> None:
    """Signing out ends "signed in" at once, in each of the person's accounts."""
    if user is None:
        return
    # The person's own memberships across their accounts: the one place this module leaves a scope.
    with scopes_disabled():
        Membership.objects.filter(user=user, last_seen_at__isnull=False).update(last_seen_at=None)


def assignment_mail_reason(member: Membership, *, by: Membership | None) -> str | None:
    """Why the member is mailed about a conversation just assigned to them by `by`, or None when not.

    Not when they assigned it themselves, turned such mail off, or are available and signed in.
    """
    if by is not None and by.pk == member.pk:
        return None
    if not member.notify_on_assignment:
        return None
    if member.availability == AWAY:
        return "you were away"
    if not is_signed_in(member):
        return "you were not signed in to InboxHub"
    return None


@transaction.atomic
def set_assignment_notifications(member: Membership, enabled: bool, *, by: Membership) -> Membership:
    """Turn the member's own mail about conversations assigned to them on or off (issue 17)."""
    assert_same_account(by, member)
    if by.pk != member.pk:
        raise PermissionDenied("Members change only their own notification settings.")
    if member.notify_on_assignment != enabled:
        member.notify_on_assignment = enabled
        member.save(update_fields=["notify_on_assignment"])
        record_change(by, member, "assignment_notifications_set", enabled=enabled)
    return member
