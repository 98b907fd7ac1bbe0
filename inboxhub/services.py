"""State changes for accounts, members and teams (A1, A4, D9)."""

from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.text import slugify
from django_scopes import scopes_disabled

from inboxhub.audit import record_change
from inboxhub.models import Account, AvailabilityChange, Invitation, Membership, Team, User
from inboxhub.permissions import assert_same_account, require


def unique_username(account: Account, email: str) -> str:
    base = slugify(email.split("@", 1)[0]).strip("-_")[:30] or "member"
    taken = set(
        Membership.objects.filter(account=account, username__startswith=base).values_list(
            "username", flat=True
        )
    )
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


@transaction.atomic
def add_member(
    account: Account,
    *,
    email: str,
    full_name: str,
    password: str | None,
    seat: str = Membership.Seat.FREE,
    permission: str = Membership.Permission.AGENT,
    by: Membership,
) -> Membership | Invitation:
    """Add a person to the account (A4): a new person gets the password given, or none until invited;
    someone who already has a login gets an invitation, and joins only by accepting it."""
    assert account.pk == by.account_id, "member and account differ"
    require(by, "manage_account")
    if account.unverified_founder_id is not None:
        # An invitation is mail too: none leaves an account signed up with an unconfirmed address.
        raise ValidationError(
            "Confirm the email address this account was signed up with before adding members: "
            "open the link InboxHub mailed to it."
        )
    email = email.strip().lower()
    if password:
        # Checked the same way whoever the email belongs to, so the answer tells nothing about them.
        try:
            validate_password(password, User(email=email, full_name=full_name))
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
    user = User.objects.filter(email__iexact=email).first()
    if user is not None and Membership.objects.filter(account=account, user=user).exists():
        raise ValidationError({"email": "This person is already a member of this account."})
    if user is not None:
        invitation, _ = Invitation.objects.update_or_create(
            account=account,
            user=user,
            defaults={
                "full_name": full_name.strip(),
                "email": email,
                "seat": seat,
                "permission": permission,
                "invited_by": by,
            },
        )
        record_change(by, invitation, "member_invited", seat=seat, permission=permission)
        return invitation
    user = User.objects.create_user(email, password or None, full_name=full_name.strip())
    member = Membership.objects.create(
        account=account, user=user, username=unique_username(account, email), seat=seat, permission=permission
    )
    record_change(by, member, "member_added", seat=seat, permission=permission)
    return member


@transaction.atomic
def accept_invitation(invitation: Invitation, *, user: User) -> Membership:
    """Join the account an invitation names, as the signed-in person it was made to (A4)."""
    if invitation.user_id != user.pk:
        raise PermissionDenied("This invitation is for someone else.")
    account = invitation.account
    # A double click or a second tab answers at the same time: the first answer holds the row, the
    # second finds it gone and gets the membership the first made (or a clear refusal if declined).
    if not Invitation.objects.select_for_update().filter(pk=invitation.pk).exists():
        member = Membership.objects.filter(account=account, user=user).first()
        if member is None:
            raise ValidationError("This invitation was declined or withdrawn.")
        return member
    member = Membership.objects.filter(account=account, user=user).first()
    if member is None:
        member = Membership.objects.create(
            account=account,
            user=user,
            username=unique_username(account, user.email),
            seat=invitation.seat,
            permission=invitation.permission,
            joined_at=timezone.now(),
        )
        record_change(member, member, "invitation_accepted", seat=member.seat, permission=member.permission)
    invitation.delete()
    return member


@receiver(user_logged_in, dispatch_uid="inboxhub.services.join_on_first_sign_in")
def join_on_first_sign_in(sender, request, user, **kwargs) -> None:
    """A person added with a password, or by an invite link, joins their accounts by signing in."""
    # The person's own memberships across their accounts: no one account's scope applies.
    with scopes_disabled():
        Membership.objects.filter(user=user, joined_at__isnull=True).update(joined_at=timezone.now())


@transaction.atomic
def withdraw_invitation(invitation: Invitation, *, by: Membership) -> None:
    """Take back an invitation not yet answered (A4)."""
    assert_same_account(by, invitation)
    require(by, "manage_account")
    record_change(by, invitation, "invitation_withdrawn", email=invitation.email)
    invitation.delete()


@transaction.atomic
def decline_invitation(invitation: Invitation, *, user: User) -> None:
    """Turn an invitation down; the account learns only that it is no longer pending (A4)."""
    if invitation.user_id != user.pk:
        raise PermissionDenied("This invitation is for someone else.")
    if not Invitation.objects.select_for_update().filter(pk=invitation.pk).exists():
        return  # answered already, in another tab
    record_change(None, invitation, "invitation_declined")
    invitation.delete()


@transaction.atomic
def confirm_founder_email(user: User) -> list[Account]:
    """Record that a founder opened the link mailed to them: their accounts may send mail (issue 16)."""
    accounts = list(Account.objects.select_for_update().filter(unverified_founder=user))
    Account.objects.filter(pk__in=[a.pk for a in accounts]).update(unverified_founder=None)
    return accounts


def _super_admins_left(account: Account, *, without: Membership) -> int:
    return (
        Membership.objects.filter(account=account, permission=Membership.Permission.SUPER_ADMIN)
        .exclude(pk=without.pk)
        .count()
    )


@transaction.atomic
def change_member(member: Membership, *, seat: str, permission: str, by: Membership) -> Membership:
    """Change a member's seat and permission level; the last super admin stays (A4)."""
    assert_same_account(by, member)
    require(by, "manage_account")
    # Lock the account's super admins so two demotions at once cannot both pass the check.
    list(
        Membership.objects.select_for_update().filter(account_id=member.account_id, permission="super_admin")
    )
    member.refresh_from_db(fields=["seat", "permission"])
    if (
        member.is_super_admin
        and permission != Membership.Permission.SUPER_ADMIN
        and _super_admins_left(member.account, without=member) == 0
    ):
        raise ValidationError({"permission": "The account needs at least one super admin."})
    changes = {}
    for field, value in (("seat", seat), ("permission", permission)):
        if getattr(member, field) != value:
            setattr(member, field, value)
            changes[field] = value
    if changes:
        member.save(update_fields=list(changes))
        record_change(by, member, "member_changed", **changes)
    return member


@transaction.atomic
def remove_member(member: Membership, *, by: Membership) -> None:
    """Remove a member from the account; the last super admin cannot be removed (A4)."""
    assert_same_account(by, member)
    require(by, "manage_account")
    list(
        Membership.objects.select_for_update().filter(account_id=member.account_id, permission="super_admin")
    )
    member.refresh_from_db(fields=["permission"])
    if member.is_super_admin and _super_admins_left(member.account, without=member) == 0:
        raise ValidationError("The last super admin cannot be removed.")
    record_change(by, member, "member_removed", email=member.user.email)
    member.delete()
    user = member.user
    # A login made by this account's invitation and never used goes with it: the email then has no
    # login again, and the next invite to it reads as the first did (issue 16 point 2).
    if not member.has_joined and user.last_login is None:
        with scopes_disabled():
            if not user.memberships.exists() and not user.invitations.exists():
                user.delete()


def _clean_team_name(account: Account, name: str, *, exclude: Team | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the team a name."})
    if len(name) > 100:
        raise ValidationError({"name": "Team names are at most 100 characters."})
    clash = Team.objects.filter(account=account, name__iexact=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise ValidationError({"name": "A team with this name already exists."})
    return name


@transaction.atomic
def create_team(account: Account, *, name: str, members=(), by: Membership) -> Team:
    """Create a team with the given members (A4)."""
    assert account.pk == by.account_id, "member and account differ"
    require(by, "manage_account")
    assert_same_account(by, *members)
    team = Team.objects.create(account=account, name=_clean_team_name(account, name))
    team.members.set(members)
    record_change(by, team, "team_created", members=[m.pk for m in members])
    return team


@transaction.atomic
def update_team(team: Team, *, name: str, members, by: Membership) -> Team:
    """Rename a team and set its members (A4)."""
    assert_same_account(by, team, *members)
    require(by, "manage_account")
    team.name = _clean_team_name(team.account, name, exclude=team)
    team.save(update_fields=["name"])
    team.members.set(members)
    record_change(by, team, "team_updated", name=team.name, members=sorted(m.pk for m in members))
    return team


@transaction.atomic
def delete_team(team: Team, *, by: Membership) -> None:
    """Delete a team; its members stay in the account (A4)."""
    assert_same_account(by, team)
    require(by, "manage_account")
    record_change(by, team, "team_deleted")
    team.delete()


@transaction.atomic
def set_availability(member: Membership, availability: str, *, by: Membership) -> Membership:
    """Set a member's own availability, Available or Away, with its history (D9)."""
    assert_same_account(by, member)
    if availability not in Membership.Availability.values:
        raise ValidationError({"availability": "Choose Available or Away."})
    if by.pk != member.pk:
        raise PermissionDenied("Members set only their own availability.")
    # Locked so two quick toggles run one after the other and each sees the other's result.
    current = (
        Membership.objects.select_for_update()
        .filter(pk=member.pk)
        .values_list("availability", flat=True)
        .get()
    )
    member.availability = current
    if current == availability:
        return member
    member.availability = availability
    member.availability_changed_at = timezone.now()
    member.save(update_fields=["availability", "availability_changed_at"])
    AvailabilityChange.objects.create(
        account_id=member.account_id,
        member=member,
        availability=availability,
        changed_by=by,
        created_at=member.availability_changed_at,
    )
    record_change(by, member, "availability_changed", availability=availability)
    return member
