"""State changes for channels and fallback addresses."""

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from channels_conn.models import Channel, FallbackAddress
from inboxhub.audit import record_change
from inboxhub.lib.html import sanitize_html
from inboxhub.lib.mail.deliverability import DomainReport, check_domain, domain_of
from inboxhub.models import Membership
from inboxhub.permissions import require

if TYPE_CHECKING:  # inboxes sit above channels in the layers: a name for the type checker only
    from inboxes.models import Inbox


def fallback_address_for(subdomain: str, local_part: str) -> str:
    return f"{local_part}@{subdomain}.{settings.INBOUND_DOMAIN}".lower()


def _free_local_part(inbox: "Inbox") -> str:
    base = "support" if inbox.is_default else (slugify(inbox.name)[:40].strip("-") or "inbox")
    taken = set(
        FallbackAddress.objects.filter(account=inbox.account, local_part__startswith=base).values_list(
            "local_part", flat=True
        )
    )
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


@transaction.atomic
def create_fallback_channel(inbox: "Inbox") -> Channel:
    """Give an inbox its always-present fallback email channel and address (A1)."""
    channel = Channel.objects.create(account=inbox.account, inbox=inbox, kind=Channel.Kind.FALLBACK_EMAIL)
    local_part = _free_local_part(inbox)
    FallbackAddress.objects.create(
        account=inbox.account,
        channel=channel,
        local_part=local_part,
        address=fallback_address_for(inbox.account.subdomain, local_part),
        company_name=_free_company_name(inbox),
    )
    return channel


def _free_company_name(inbox: "Inbox") -> str:
    """C3: the account's company name for the first address, "<company> <inbox>" for later ones."""
    company = inbox.account.company_name.strip()
    for name in (company, f"{company} {inbox.name}".strip()):
        name = name[:100]
        if not FallbackAddress.objects.filter(account=inbox.account, company_name__iexact=name).exists():
            return name
    return ""  # blank stands for the account's company name until an admin picks one


@transaction.atomic
def set_channel_enabled(channel: Channel, enabled: bool, *, by) -> Channel:
    """Turn a channel on or off; mail to a channel that is off is refused (F2)."""
    assert channel.account_id == by.account_id, "member and channel in different accounts"
    require(by, "manage_inboxes")
    if channel.enabled != enabled:
        channel.enabled = enabled
        channel.save(update_fields=["enabled"])
        record_change(by, channel, "channel_turned_on" if enabled else "channel_turned_off", enabled=enabled)
    return channel


# --- Fallback address editor (C1–C8, C12) ---------------------------------------------------

INBOXHUB_DOMAINS_MESSAGE = (
    "{domain} belongs to InboxHub. Use an address on your own company's domain, or choose “Use default”."
)
COMPANY_NAME_TAKEN = (
    "Another inbox's fallback address already uses the company name “{name}”. "
    "Choose a different name so contacts can tell your inboxes apart."
)


def validate_custom_from_address(address: str) -> DomainReport:
    """Refuse an address InboxHub cannot send as: one of InboxHub's domains, or a domain without mail (C4).

    Returns the domain's DNS report (SPF, DMARC) for the page to show.
    """
    domain = domain_of(address)
    ours = {settings.INBOUND_DOMAIN, settings.SENDING_DOMAIN_PAID, settings.SENDING_DOMAIN_FREE}
    if any(domain == own.lower() or domain.endswith(f".{own.lower()}") for own in ours):
        raise ValidationError({"custom_from_address": INBOXHUB_DOMAINS_MESSAGE.format(domain=domain)})
    report = check_domain(domain)
    if report.refusal:
        raise ValidationError({"custom_from_address": report.refusal})
    return report


def update_fallback_address(
    fallback_address: FallbackAddress,
    *,
    send_from: bool,
    from_name_mode: str,
    company_name: str,
    from_address_mode: str,
    custom_from_address: str,
    signature_html: str,
    select_original_sender: bool,
    by: Membership,
) -> list[str]:
    """Save how mail from the inbox looks to contacts (C1–C8, C12); return what the signature lost.

    The signature is stored only as the sanitizer's output. A new custom from address is
    checked in DNS (outside the transaction: lookups take up to seconds) and starts unverified.
    """
    assert fallback_address.account_id == by.account_id, "member and address in different accounts"
    require(by, "manage_inboxes")
    company_name = company_name.strip()
    local, _, domain = custom_from_address.strip().rpartition("@")
    custom_from_address = f"{local}@{domain.lower()}" if local else ""
    if from_address_mode == FallbackAddress.FromAddress.CUSTOM and not custom_from_address:
        raise ValidationError(
            {"custom_from_address": "Enter the address to send from, or choose “Use default”."}
        )
    address_changed = custom_from_address.lower() != fallback_address.custom_from_address.lower()
    if custom_from_address and address_changed:
        validate_custom_from_address(custom_from_address)
    signature = sanitize_html(signature_html)
    with transaction.atomic():
        if (
            FallbackAddress.objects.filter(
                account=fallback_address.account, company_name__iexact=company_name
            )
            .exclude(pk=fallback_address.pk)
            .exists()
        ):
            raise ValidationError({"company_name": COMPANY_NAME_TAKEN.format(name=company_name)})
        values = {
            "send_from": send_from,
            "from_name_mode": from_name_mode,
            "company_name": company_name,
            "from_address_mode": from_address_mode,
            "custom_from_address": custom_from_address,
            "signature_html": signature.html,
            "select_original_sender": select_original_sender,
        }
        if address_changed:
            # C4: a verification holds only for the exact address it was made for.
            values.update(
                custom_from_verified_at=None, custom_from_nonce="", custom_from_verification_sent_at=None
            )
        changed = [name for name, value in values.items() if getattr(fallback_address, name) != value]
        for name in changed:
            setattr(fallback_address, name, values[name])
        if changed:
            try:
                with transaction.atomic():
                    fallback_address.save(update_fields=changed)
            except IntegrityError:
                # Another admin saved the same company name a moment ago (the constraint holds C3).
                raise ValidationError(
                    {"company_name": COMPANY_NAME_TAKEN.format(name=company_name)}
                ) from None
            record_change(by, fallback_address, "fallback_address_updated", changed=sorted(changed))
    return signature.removed
