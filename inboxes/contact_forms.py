"""Input of the contact page: its owner (D6, H6) and a contact to merge into it (H6)."""

from django import forms

from inboxes.contact_merge import contact_with_address, contacts_named
from inboxes.models import Contact
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
        self.fields["owner"].queryset = Membership.joined_members(account)


class ContactMergeForm(forms.Form):
    """The other contact of the same person, by an address of theirs or their name, in this account (H6)."""

    email = forms.CharField(
        label="Email address or name of the other contact",
        max_length=254,
        help_text=(
            "That contact is merged into this one: its conversations move here and its address stays "
            "as another address of this contact."
        ),
        error_messages={"required": "Enter the email address or name of the contact to merge into this one."},
    )

    def __init__(self, *args, contact: Contact, **kwargs):
        super().__init__(*args, **kwargs)
        self.contact = contact
        self.other: Contact | None = None

    def clean_email(self) -> str:
        wanted = " ".join(self.cleaned_data["email"].split())
        if "@" in wanted:
            wanted = wanted.lower()
            other = contact_with_address(self.contact.account, wanted)
            if other is None:
                raise forms.ValidationError(f"No contact of this account has the address {wanted}.")
        else:
            named = list(contacts_named(self.contact.account, wanted, but=self.contact)[:2])
            if not named:
                raise forms.ValidationError(f"No other contact of this account is named {wanted}.")
            if len(named) > 1:
                raise forms.ValidationError(
                    f"Several contacts are named {wanted}: enter the email address of the one to merge."
                )
            other = named[0]
        if other.pk == self.contact.pk:
            raise forms.ValidationError(f"{wanted} is already an address of this contact.")
        self.other = other
        return wanted
