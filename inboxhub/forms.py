from django import forms
from django.contrib.auth.forms import PasswordResetForm, SetPasswordForm
from django.contrib.auth.password_validation import validate_password

from inboxhub.models import Membership, User, validate_subdomain
from inboxhub.password_reset import queue_password_reset


def login_username(request, credentials: dict | None) -> str | None:
    """The email a login attempt names, as the lockout counts it (A9).

    Logging in ignores the email's case, so the lockout must too: otherwise
    ALICE@… and alice@… would each get their own allowance of wrong passwords.
    """
    data = credentials if credentials else getattr(request, "POST", {})
    username = data.get("username")
    return username.strip().lower() if isinstance(username, str) else username


class OneLineField(forms.CharField):
    """A name that ends up in mail headers: each run of whitespace, line breaks too, is one space (B11)."""

    def to_python(self, value):
        value = super().to_python(value)
        return " ".join(value.split()) if value else value


class NewAccountForm(forms.Form):
    """A company and its subdomain: all a signed-in person gives to create another account."""

    company_name = OneLineField(label="Company name", max_length=100)
    subdomain = forms.CharField(
        label="Subdomain",
        max_length=40,
        help_text="Lowercase letters, digits and hyphens; your inbox lives at /a/<subdomain>/.",
    )

    def clean_subdomain(self) -> str:
        value = self.cleaned_data["subdomain"].strip().lower()
        validate_subdomain(value)
        return value


class SignupForm(NewAccountForm):
    full_name = OneLineField(label="Your name", max_length=150)
    email = forms.EmailField(label="Work email")
    password = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("email"):
            try:
                validate_password(
                    data["password"], User(email=data["email"], full_name=data.get("full_name", ""))
                )
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


class AddMemberForm(forms.Form):
    HOW_CHOICES = [("invite", "Send an invite link"), ("password", "Set a password now")]

    full_name = OneLineField(label="Name", max_length=150)
    email = forms.EmailField(label="Email")
    seat = forms.ChoiceField(label="Seat", choices=Membership.Seat.choices, initial=Membership.Seat.FREE)
    permission = forms.ChoiceField(
        label="Permission", choices=Membership.Permission.choices, initial=Membership.Permission.AGENT
    )
    how = forms.ChoiceField(label="Sign-in", choices=HOW_CHOICES, initial="invite", widget=forms.RadioSelect)
    password = forms.CharField(
        label="Password", required=False, strip=False, widget=forms.PasswordInput(render_value=False)
    )

    def clean(self):
        data = super().clean()
        if data.get("how") == "password" and not data.get("password"):
            self.add_error("password", "Enter a password, or choose to send an invite link.")
        return data


class ChangeMemberForm(forms.Form):
    seat = forms.ChoiceField(label="Seat", choices=Membership.Seat.choices)
    permission = forms.ChoiceField(label="Permission", choices=Membership.Permission.choices)


class TeamForm(forms.Form):
    name = forms.CharField(label="Team name", max_length=100)
    members = forms.ModelMultipleChoiceField(
        label="Members",
        queryset=Membership.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        # Only this account's members are valid choices: another account's id fails validation.
        self.fields["members"].queryset = Membership.joined_members(account)
        self.fields["members"].label_from_instance = lambda m: f"{m.user.full_name} ({m.user.email})"


class AcceptInviteForm(SetPasswordForm):
    """Choose a password to accept an invitation."""


class ResetPasswordForm(PasswordResetForm):
    """Hand the reset to a worker (inboxhub/password_reset.py, which also reaches invited members)."""

    def save(self, *, domain_override=None, use_https=False, request=None, **_options):
        domain = domain_override or request.get_host()
        queue_password_reset(self.cleaned_data["email"], domain=domain, use_https=use_https)
