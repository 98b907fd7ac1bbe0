"""Prove that the owner of a custom from address wants InboxHub to send in its name (C4).

*Verify address* mails a signed link to the address. The link names the fallback
address, the custom address and a nonce stored on the row: it works once (the nonce is
cleared when used), only for that exact address (changing the address clears the nonce
and the verification), only for the newest link sent, and for 24 hours.

The mail is queued (`inboxhub.outbound`) and a worker delivers it through the
configured outbound `EMAIL_HOST`/`EMAIL_PORT`; the settings page shows when that failed.
"""

import secrets
from datetime import timedelta

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from channels_conn.models import FallbackAddress
from inboxhub.audit import record_change
from inboxhub.models import Membership, OutboundEmail
from inboxhub.outbound import queue_email
from inboxhub.permissions import require

SALT = "channels_conn.verification.custom-from-address"
MAX_AGE = timedelta(hours=24)


class LinkRefused(Exception):
    """The link cannot verify anything; the message says why, in the user's words."""


def make_token(fallback_address: FallbackAddress) -> str:
    payload = {
        "f": fallback_address.pk,
        "a": fallback_address.custom_from_address.lower(),
        "n": fallback_address.custom_from_nonce,
    }
    return signing.dumps(payload, salt=SALT, compress=True)


def read_token(token: str) -> dict:
    """The payload of a genuine, unexpired link; LinkRefused otherwise."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except signing.SignatureExpired:
        raise LinkRefused(
            "This verification link has expired: links work for 24 hours. "
            "Send a new one from the settings page."
        ) from None
    except signing.BadSignature:
        raise LinkRefused(
            "This verification link is not valid. Open the link exactly as it appears in the email, "
            "or send a new one."
        ) from None
    if not isinstance(payload, dict) or not {"f", "a", "n"} <= payload.keys():
        raise LinkRefused("This verification link is not valid. Send a new one from the settings page.")
    return payload


@transaction.atomic
def send_verification(fallback_address: FallbackAddress, *, link_for, by: Membership) -> OutboundEmail:
    """Queue a mail with a one-time link to the custom from address (C4); older links stop working.

    `link_for(token)` builds the absolute URL of the confirmation page.
    """
    assert fallback_address.account_id == by.account_id, "member and address in different accounts"
    require(by, "manage_inboxes")
    if not fallback_address.custom_from_address:
        raise ValidationError({"custom_from_address": "Enter the from address to verify."})
    if fallback_address.custom_from_verified:
        raise ValidationError({"custom_from_address": "This address is already verified."})
    fallback_address.custom_from_nonce = secrets.token_hex(16)
    fallback_address.custom_from_verification_sent_at = timezone.now()
    fallback_address.save(update_fields=["custom_from_nonce", "custom_from_verification_sent_at"])
    record_change(
        by, fallback_address, "from_address_verification_sent", address=fallback_address.custom_from_address
    )
    context = {
        "link": link_for(make_token(fallback_address)),
        "fallback_address": fallback_address,
        "inbox": fallback_address.channel.inbox,
        "account": fallback_address.account,
        "by": by,
    }
    return queue_email(
        fallback_address.account,
        kind=OutboundEmail.Kind.ADDRESS_VERIFICATION,
        to=fallback_address.custom_from_address,
        subject=f"Verify {fallback_address.custom_from_address} for InboxHub",
        body=render_to_string("channels_conn/email/verify_from_address.txt", context),
    )


def check_link(fallback_address: FallbackAddress, token: str) -> None:
    """Raise LinkRefused unless `token` may verify this fallback address's custom from address now."""
    payload = read_token(token)
    if payload["f"] != fallback_address.pk:
        raise LinkRefused("This verification link is not valid. Send a new one from the settings page.")
    if payload["a"] != fallback_address.custom_from_address.lower():
        raise LinkRefused(
            f"This link was sent to {payload['a']}, but the from address is now "
            f"{fallback_address.custom_from_address or 'not set'}. Nothing was changed."
        )
    if fallback_address.custom_from_verified and not fallback_address.custom_from_nonce:
        raise LinkRefused(f"This link was already used: {fallback_address.custom_from_address} is verified.")
    if not fallback_address.custom_from_nonce or not secrets.compare_digest(
        payload["n"], fallback_address.custom_from_nonce
    ):
        raise LinkRefused(
            "This verification link was already used or replaced by a newer one. "
            "Open the newest email, or send a new link."
        )


@transaction.atomic
def confirm_verification(fallback_address: FallbackAddress, token: str, *, by: Membership) -> FallbackAddress:
    """Mark the custom from address verified if the link allows it; the link then stops working (C4)."""
    assert fallback_address.account_id == by.account_id, "member and address in different accounts"
    require(by, "manage_inboxes")
    # The row lock makes two clicks on one link verify once; the second sees the nonce gone.
    fallback_address = FallbackAddress.objects.select_for_update().get(pk=fallback_address.pk)
    check_link(fallback_address, token)
    fallback_address.custom_from_verified_at = timezone.now()
    fallback_address.custom_from_nonce = ""
    fallback_address.save(update_fields=["custom_from_verified_at", "custom_from_nonce"])
    record_change(by, fallback_address, "from_address_verified", address=fallback_address.custom_from_address)
    return fallback_address
