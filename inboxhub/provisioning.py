"""A new account with everything it starts with: its owner, default inbox, fallback address, pipeline (A1).

Above every feature app in the layers: it is the one place that sets up all of them.
"""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_scopes import scope

from inboxes.services import create_inbox
from inboxhub.audit import record_change
from inboxhub.models import Account, Membership, User, validate_subdomain
from inboxhub.services import unique_username
from tickets.services import create_default_pipeline


def check_subdomain_free(subdomain: str) -> str:
    """The subdomain as stored, or the reason it cannot be had (A1)."""
    subdomain = subdomain.strip().lower()
    validate_subdomain(subdomain)
    if Account.objects.filter(subdomain=subdomain).exists():
        raise ValidationError({"subdomain": "This subdomain is already taken."})
    return subdomain


@transaction.atomic
def provision_account(
    *,
    subdomain: str,
    company_name: str,
    full_name: str = "",
    email: str = "",
    password: str | None = None,
    tier: str = Account.Tier.FREE,
    user: User | None = None,
    email_unverified: bool = False,
) -> Membership:
    """Create an account with its super admin, default inbox, fallback address and pipeline (A1).

    The super admin is a new person (full_name, email, password), or `user`, someone
    who already has a login and creates another account. With `email_unverified`, nothing is
    sent from the account until the super admin opens the link mailed to them (issue 16).
    """
    subdomain = check_subdomain_free(subdomain)
    if user is None:
        email = email.strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError({"email": "An account with this email already exists. Log in to continue."})
        if password is not None:
            try:
                validate_password(password, User(email=email, full_name=full_name))
            except ValidationError as exc:
                raise ValidationError({"password": exc.messages}) from None
    try:
        account = Account.objects.create(subdomain=subdomain, company_name=company_name.strip(), tier=tier)
        if user is None:
            user = User.objects.create_user(email, password, full_name=full_name.strip())
        if email_unverified:
            account.unverified_founder = user
            account.save(update_fields=["unverified_founder"])
    except IntegrityError:
        raise ValidationError("That subdomain or email was just taken. Please try again.") from None
    with scope(account=account):
        owner = Membership.objects.create(
            account=account,
            user=user,
            username=unique_username(account, user.email),
            seat=Membership.Seat.SERVICE_HUB,
            permission=Membership.Permission.SUPER_ADMIN,
            joined_at=timezone.now(),
        )
        create_inbox(account, name="Inbox", is_default=True)
        create_default_pipeline(account)
        record_change(owner, account, "account_created", subdomain=subdomain)
    return owner
