"""Who may change automatic assignment (D1)."""

from inboxhub.models import Membership
from inboxhub.permissions import can

PAID_SEAT_REASON = (
    "Only a member with a paid seat can turn on or change automatic assignment. "
    "Your seat is free: ask a super admin for a Sales Hub or Service Hub seat."
)


def can_edit_routing(member: Membership) -> bool:
    """Open inbox settings (B8) and hold a paid seat (D1)."""
    return can(member, "manage_inboxes") and member.has_paid_seat


def routing_refusal(member: Membership) -> str | None:
    """Why the member may not change automatic assignment, in their words, or None when they may."""
    if not can(member, "manage_inboxes"):
        return "Only super admins and account admins can change inbox settings."
    if not member.has_paid_seat:
        return PAID_SEAT_REASON
    return None
