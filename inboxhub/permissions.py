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


# What a refused member reads (the 403 page shows it): who may, in the product's words.
REFUSALS = {
    "manage_account": "Only super admins can manage this account's members, seats and teams.",
    "manage_inboxes": "Only super admins and account admins can open inbox settings.",
}


def require(member: Membership, action: str) -> None:
    if not can(member, action):
        raise PermissionDenied(REFUSALS[action])


def assert_same_account(by: Membership, *objects) -> None:
    """A member acting on another account's object is a caller's bug, not a user's error (Tenancy)."""
    for obj in objects:
        assert obj.account_id == by.account_id, "member and object in different accounts"
