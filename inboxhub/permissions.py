"""One place that answers "may this member do X here"."""

from django.core.exceptions import PermissionDenied

from inboxhub.models import Membership

# Account settings (members, seats, teams) are for super admins only (A4);
# inbox settings for super and account admins (B8).
ACTIONS = {
    "manage_account": {Membership.Permission.SUPER_ADMIN},
    "manage_inboxes": {Membership.Permission.SUPER_ADMIN, Membership.Permission.ACCOUNT_ADMIN},
}


def can(member: Membership, action: str) -> bool:
    return member.permission in ACTIONS[action]


def require(member: Membership, action: str) -> None:
    if not can(member, action):
        raise PermissionDenied(f"Your permission level does not allow this ({action}).")
