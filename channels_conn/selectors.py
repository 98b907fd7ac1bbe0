"""How mail sent from an inbox looks to contacts: from name, from address, signature (C2–C7, C12).

The preview on the settings page and the outbound mail read these, so a contact sees
exactly what the preview showed.
"""

import html5lib
from django.conf import settings
from django.utils.html import escape
from html5lib.serializer import HTMLSerializer

from channels_conn.models import FallbackAddress
from inboxhub.lib.html import sanitize_html
from inboxhub.models import Membership

# C6: the tokens a signature may hold, filled with the sending agent's name at send time.
SIGNATURE_TOKENS = {
    "{{full_name}}": "Full name",
    "{{first_name}}": "First name",
    "{{last_name}}": "Last name",
}


def company_name_of(fallback_address: FallbackAddress) -> str:
    return fallback_address.company_name.strip() or fallback_address.account.company_name


def from_name(fallback_address: FallbackAddress, member: Membership) -> str:
    """C2: "Jane Doe at Acme" or "Acme"."""
    company = company_name_of(fallback_address)
    agent = member.user.full_name.strip()
    if fallback_address.from_name_mode == FallbackAddress.FromName.COMPANY or not agent:
        return company
    return f"{agent} at {company}"


def default_from_address(member: Membership) -> str:
    """C4: <username>@<subdomain>.<SENDING_DOMAIN_PAID>, or SENDING_DOMAIN_FREE for a free seat."""
    domain = settings.SENDING_DOMAIN_PAID if member.has_paid_seat else settings.SENDING_DOMAIN_FREE
    return f"{member.username}@{member.account.subdomain}.{domain}"


def effective_from(fallback_address: FallbackAddress, member: Membership) -> tuple[str, str]:
    """The (from name, from address) of mail `member` sends from this inbox (C2, C4).

    A custom address is used only once verified; until then the default one is.
    """
    assert fallback_address.account_id == member.account_id, "member and address in different accounts"
    if fallback_address.from_address_mode == FallbackAddress.FromAddress.CUSTOM and (
        fallback_address.custom_from_verified
    ):
        address = fallback_address.custom_from_address
    else:
        address = default_from_address(member)
    return from_name(fallback_address, member), address


def render_signature(signature_html: str, member: Membership) -> str:
    """The signature with its tokens filled in with the sending agent's name (C6), safe to show."""
    user = member.user
    values = {
        "{{full_name}}": user.full_name,
        "{{first_name}}": user.first_name,
        "{{last_name}}": user.last_name,
    }
    for token, value in values.items():
        signature_html = signature_html.replace(token, str(escape(value)))
    # Names are escaped, but a token may sit inside an attribute (a link's address): the filled
    # signature goes through the sanitizer again, so only its output is ever shown or sent.
    return sanitize_html(signature_html).html


def styles_as_data(safe_html: str) -> str:
    """Move `style` attributes of sanitized HTML to `data-style`, for showing it on our pages.

    The pages' CSP refuses style attributes in markup; static/js/signature_editor.js applies
    the (sanitizer-approved) declarations through the CSSOM, which the CSP allows.
    """
    fragment = html5lib.parseFragment(safe_html, namespaceHTMLElements=False)
    for element in fragment.iter():
        if isinstance(element.tag, str) and "style" in element.attrib:
            element.attrib["data-style"] = element.attrib.pop("style")
    walker = html5lib.getTreeWalker("etree")
    return HTMLSerializer(quote_attr_values="always", omit_optional_tags=False).render(walker(fragment))
