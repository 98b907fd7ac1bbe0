"""Input of the contact page: its owner (D6, H6)."""

from django import forms

from inboxhub.models import Account, Membership

OWNER_HELP = (
    "Any member can own a contact. Automatic assignment by contact owner only gives conversations "
    "to an owner with a paid seat; a free-seat owner gets none automatically."
)


class OwnerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, member: Membership) -> str:
        label = (
            f"{member.user.full_name} ({member.user.email})" if member.user.full_name else member.user.email
        )
        return f"{label}, free seat" if not member.has_paid_seat else label


class ContactOwnerForm(forms.Form):
    """A member of this account, or nobody; another account's member is an invalid choice (A2)."""

    owner = OwnerChoiceField(
        label="Contact owner",
        queryset=Membership.objects.none(),
        required=False,
        empty_label="No owner",
        help_text=OWNER_HELP,
        error_messages={"invalid_choice": "Choose a member of this account as the owner."},
    )

    def __init__(self, *args, account: Account, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = Membership.objects.filter(account=account).select_related("user")
