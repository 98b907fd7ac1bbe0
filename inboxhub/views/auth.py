"""Sign-up, the landing redirect, the account switcher and invitations."""

from datetime import timedelta

from axes.helpers import get_client_ip_address, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_scopes import scopes_disabled

from inboxhub.forms import NewAccountForm, SignupForm, login_username
from inboxhub.models import Account, Invitation, SignupAttempt, User
from inboxhub.provisioning import check_subdomain_free, provision_account
from inboxhub.services import accept_invitation, confirm_founder_email, decline_invitation
from inboxhub.signup_mail import (
    queue_founder_confirmation,
    queue_login_note,
    user_from_token,
    verification_token,
)

# Sign-ups one IP address may make in an hour: enough for an office, too few to farm accounts
# or to mail strangers' addresses through the "you already have a login" note.
SIGNUP_LIMIT_PER_IP = 10
SIGNUP_WINDOW_SECONDS = 60 * 60
SIGNUP_THROTTLED = "Too many sign-ups from your network in the last hour. Please try again in an hour."


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    accounts = Account.objects.filter(memberships__user=request.user)
    account = accounts.filter(subdomain=request.session.get("last_account", "")).first() or accounts.first()
    if account is None:
        return redirect("accounts")
    return redirect("inboxes:index", account.subdomain)


@require_GET
@login_required
def accounts(request: HttpRequest) -> HttpResponse:
    return render(request, "inboxhub/accounts.html", {"invitations": _my_invitations(request)})


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return new_account(request)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not _signup_allowed(request):
            form.add_error(None, SIGNUP_THROTTLED)
            return render(request, "registration/signup.html", {"form": form}, status=429)
        try:
            _sign_up(request, form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("signup_sent")
    return render(request, "registration/signup.html", {"form": form})


def _signup_allowed(request: HttpRequest) -> bool:
    """Count this sign-up against its IP address's hourly allowance (issue 16 point 3)."""
    ip = get_client_ip_address(request)
    window_start = timezone.now() - timedelta(seconds=SIGNUP_WINDOW_SECONDS)
    SignupAttempt.objects.filter(at__lt=window_start).delete()
    SignupAttempt.objects.create(ip=ip)
    return SignupAttempt.objects.filter(ip=ip, at__gte=window_start).count() <= SIGNUP_LIMIT_PER_IP


def _sign_up(request: HttpRequest, data: dict) -> None:
    """Create the account and mail the link that confirms its founder's address; for an email that
    already has a login, create nothing and mail that login a note instead. The page answers the same."""
    existing = User.objects.filter(email__iexact=data["email"]).first()
    if existing is not None:
        check_subdomain_free(data["subdomain"])
        links = {"login": request.build_absolute_uri(reverse("login"))}
        links["reset"] = request.build_absolute_uri(reverse("password_reset"))
        if Account.objects.filter(unverified_founder=existing).exists():
            # Signing up again is how a founder whose first link was lost gets another.
            links["verify"] = request.build_absolute_uri(
                reverse("signup_verify", args=[verification_token(existing)])
            )
        body = render_to_string("registration/email/signup_existing.txt", links)
        queue_login_note(to=existing.email, body=body)
        return
    owner = provision_account(
        subdomain=data["subdomain"],
        company_name=data["company_name"],
        full_name=data["full_name"],
        email=data["email"],
        password=data["password"],
        email_unverified=True,
    )
    link = request.build_absolute_uri(reverse("signup_verify", args=[verification_token(owner.user)]))
    body = render_to_string("registration/email/signup_verify.txt", {"owner": owner, "link": link})
    queue_founder_confirmation(owner, body=body)


@require_GET
def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/signup_sent.html")


@require_http_methods(["GET", "POST"])
def signup_verify(request: HttpRequest, token: str) -> HttpResponse:
    """The link mailed at sign-up: a button that confirms the address (issue 16); a GET alone,
    as mail scanners make, confirms nothing."""
    user = user_from_token(token)
    if user is None:
        return render(request, "registration/signup_verify.html", {"validlink": False}, status=404)
    if request.method == "POST":
        confirm_founder_email(user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Your email address is confirmed. Welcome to InboxHub, {user.first_name}.")
        return redirect("home")
    return render(request, "registration/signup_verify.html", {"validlink": True, "email": user.email})


def _my_invitations(request: HttpRequest):
    # A person's own invitations across accounts, as the account switcher lists their accounts.
    with scopes_disabled():
        return list(
            Invitation.objects.filter(user=request.user).select_related("account", "invited_by__user")
        )


@require_GET
@login_required
def invitations(request: HttpRequest) -> HttpResponse:
    """The invitations waiting for the signed-in person; accepted, the account joins their list (A4)."""
    return render(request, "inboxhub/invitations.html", {"invitations": _my_invitations(request)})


@require_POST
@login_required
def invitation_answer(request: HttpRequest, invitation_id: int, answer: str) -> HttpResponse:
    with scopes_disabled():
        # Someone else's invitation answers 404, as a missing one does.
        invitation = get_object_or_404(
            Invitation.objects.select_related("account"), pk=invitation_id, user=request.user
        )
        company = invitation.account.company_name
        if answer == "accept":
            try:
                member = accept_invitation(invitation, user=request.user)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
                return redirect("invitations")
            messages.success(request, f"You joined {company}.")
            return redirect("inboxes:index", member.account.subdomain)
        decline_invitation(invitation, user=request.user)
    messages.success(request, f"You declined the invitation to {company}.")
    return redirect("invitations")


def new_account(request: HttpRequest) -> HttpResponse:
    """A signed-in person creates another account and becomes its super admin, staying signed in."""
    form = NewAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            # Someone whose own address is not confirmed yet sends nothing from this account either.
            pending = Account.objects.filter(unverified_founder=request.user).exists()
            owner = provision_account(**form.cleaned_data, user=request.user, email_unverified=pending)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"{owner.account.company_name} is ready. Your inbox is waiting.")
            return redirect("inboxes:index", owner.account.subdomain)
    return render(request, "registration/signup.html", {"form": form})


def locked_out(request: HttpRequest, original_response=None, credentials: dict | None = None) -> HttpResponse:
    """The lockout page, saying when sign-in opens again (A9): the cool-off after the last wrong password.

    django-axes calls it (AXES_LOCKOUT_CALLABLE) once the email or the IP address has had too many.
    """
    cool_off = get_cool_off(request)
    last = AccessAttempt.objects.filter(
        Q(username=login_username(request, credentials))
        | Q(ip_address=getattr(request, "axes_ip_address", None))
    ).aggregate(last=Max("attempt_time"))["last"]
    context = {"lock_ends_at": (last or timezone.now()) + cool_off, "cool_off": cool_off}
    return render(request, "registration/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)
