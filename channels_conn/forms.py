"""Input of the fallback address editor (C1–C8) and the messages users read."""

from django import forms

from channels_conn.models import FallbackAddress
from inboxhub.forms import OneLineField

SIGNATURE_MAX_LENGTH = 20_000


class FallbackAddressForm(forms.Form):
    """The Configuration tab. A plain form: the service saves, so a field not listed here never is (A8)."""

    send_from = forms.BooleanField(
        label="Use the InboxHub address to send messages",
        required=False,
        help_text="Off: the inbox still receives email, but replies cannot be sent from it.",
    )
    from_name_mode = forms.ChoiceField(label="From name", choices=FallbackAddress.FromName.choices)
    company_name = OneLineField(
        label="Company name",
        max_length=100,
        error_messages={"required": "Enter the company name contacts will see."},
    )
    from_address_mode = forms.ChoiceField(
        label="From address", choices=FallbackAddress.FromAddress.choices, widget=forms.RadioSelect
    )
    custom_from_address = forms.EmailField(
        label="Custom from address",
        required=False,
        max_length=254,
        error_messages={"invalid": "Enter an email address like support@yourcompany.com."},
        widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "support@yourcompany.com"}),
    )
    signature_html = forms.CharField(
        label="Signature HTML",
        required=False,
        max_length=SIGNATURE_MAX_LENGTH,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"}),
    )
    select_original_sender = forms.BooleanField(
        label="Select original sender of forwarded emails",
        required=False,
        help_text=(
            "On: an email a member forwards into the inbox is logged to the original sender's contact. "
            "Off: it is logged to the member who forwarded it."
        ),
    )

    FIELDS = (
        "send_from",
        "from_name_mode",
        "company_name",
        "from_address_mode",
        "custom_from_address",
        "signature_html",
        "select_original_sender",
    )

    @classmethod
    def initial_from(cls, fallback_address: FallbackAddress) -> dict:
        initial = {name: getattr(fallback_address, name) for name in cls.FIELDS}
        initial["company_name"] = initial["company_name"] or fallback_address.account.company_name
        return initial
