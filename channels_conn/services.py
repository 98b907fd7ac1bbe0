"""State changes for channels and fallback addresses."""

from django.conf import settings
from django.db import transaction
from django.utils.text import slugify

from channels_conn.models import Channel, FallbackAddress
from inboxes.models import Inbox


def fallback_address_for(subdomain: str, local_part: str) -> str:
    return f"{local_part}@{subdomain}.{settings.INBOUND_DOMAIN}".lower()


def _free_local_part(inbox: Inbox) -> str:
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
def create_fallback_channel(inbox: Inbox) -> Channel:
    """Give an inbox its always-present fallback email channel and address (A1)."""
    channel = Channel.objects.create(account=inbox.account, inbox=inbox, kind=Channel.Kind.FALLBACK_EMAIL)
    local_part = _free_local_part(inbox)
    FallbackAddress.objects.create(
        account=inbox.account,
        channel=channel,
        local_part=local_part,
        address=fallback_address_for(inbox.account.subdomain, local_part),
    )
    return channel
