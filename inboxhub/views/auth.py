"""Sign-up, the landing redirect, the account switcher and invitations."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from inboxhub.forms import NewAccountForm, SignupForm
from inboxhub.models import Account
from inboxhub.provisioning import provision_account


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
    return render(request, "inboxhub/accounts.html")


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return new_account(request)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            owner = provision_account(
                subdomain=data["subdomain"],
                company_name=data["company_name"],
                full_name=data["full_name"],
                email=data["email"],
                password=data["password"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            login(request, owner.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to InboxHub, {owner.user.first_name}. Your inbox is ready.")
            return redirect("inboxes:index", owner.account.subdomain)
    return render(request, "registration/signup.html", {"form": form})


def new_account(request: HttpRequest) -> HttpResponse:
    """A signed-in person creates another account and becomes its super admin, staying signed in."""
    form = NewAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            owner = provision_account(**form.cleaned_data, user=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"{owner.account.company_name} is ready. Your inbox is waiting.")
            return redirect("inboxes:index", owner.account.subdomain)
    return render(request, "registration/signup.html", {"form": form})
