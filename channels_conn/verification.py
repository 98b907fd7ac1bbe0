"""Prove that the owner of a custom from address wants InboxHub to send in its name (C4).

*Verify address* mails a signed link to the address. Whoever controls that
mailbox confirms it: the link needs no InboxHub login, because it proves only
that the mailbox received it, and it grants nothing else. Opening the link
(GET) changes nothing, so a mail scanner that fetches links verifies nothing;
the page's *Verify* button (POST) does. The link names the account, the
fallback address, the custom address and a nonce stored on the row: it
verifies only that exact address (changing the address clears the nonce and
the verification), only while it is the newest link sent, and for 24 hours.
A second confirmation of a verified address answers "already verified".

The mail is queued (`inboxhub.outbound`) and a worker delivers it through the
configured outbound `EMAIL_HOST`/`EMAIL_PORT`; the settings page shows when that failed.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django_scopes import scope

from channels_conn.models import FallbackAddress
from inboxhub.audit import record_change
from inboxhub.models import Account, Membership, OutboundEmail
from inboxhub.outbound import queue_email
from inboxhub.permissions import require

SALT = "channels_conn.verification.custom-from-address"
MAX_AGE = timedelta(hours=24)

NOT_VALID = (
    "This verification link is not valid. Open the link exactly as it appears in the email, "
    "or ask for a new one."
)
EXPIRED = "This verification link has expired: links work for 24 hours."
CHANGED = (
    "This link was sent to {sent_to}, but the inbox's from address has changed since. Nothing was verified."
)
REPLACED = "This verification link was replaced by a newer one. Open the newest email, or ask for a new link."


class LinkState:
    do_not_call_in_templates = True  # templates read its names as constants
    READY = "ready"  # genuine and current: the page asks to confirm
    VERIFIED = "verified"  # this confirmation verified the address
    ALREADY_VERIFIED = "already_verified"  # the address was verified before: nothing to do
    REFUSED = "refused"  # verifies nothing; `refusal` says why


@dataclass(frozen=True)
class LinkCheck:
    """What a verification link does now, and for which account, inbox and address it was made."""

    state: str
    sent_to: str = ""
    refusal: str = ""
    # None when the link names nothing that exists (tampered, or the inbox was deleted).
    fallback_address: FallbackAddress | None = None

    @property
    def account(self) -> Account | None:
        return self.fallback_address.account if self.fallback_address else None

    @property
    def inbox(self):
        return self.fallback_address.channel.inbox if self.fallback_address else None


def make_token(fallback_address: FallbackAddress) -> str:
    payload = {
        "c": fallback_address.account_id,
        "f": fallback_address.pk,
        "a": fallback_address.custom_from_address.lower(),
        "n": fallback_address.custom_from_nonce,
    }
    return signing.dumps(payload, salt=SALT, compress=True)


def _read_token(token: str) -> tuple[dict | None, bool]:
    """The payload of a genuinely signed link and whether it has expired; (None, False) when forged."""
    try:
        payload, expired = signing.loads(token, salt=SALT, max_age=MAX_AGE), False
    except signing.SignatureExpired:
        # Signed by us, only too old: read it anyway, to say which account and inbox it was for.
        payload, expired = signing.loads(token, salt=SALT), True
    except signing.BadSignature:
        return None, False
    if not isinstance(payload, dict) or not {"c", "f", "a", "n"} <= payload.keys():
        return None, False
    return payload, expired


def _fallback_address_named(payload: dict, *, lock: bool = False) -> FallbackAddress | None:
    """The fallback address the link names, read in its account's scope; None when it is gone."""
    account = Account.objects.filter(pk=payload["c"]).first()
    if account is None:
        return None
    with scope(account=account):
        rows = FallbackAddress.objects.select_related("account", "channel__inbox")
        if lock:
            rows = rows.select_for_update(of=("self",))
        return rows.filter(account=account, pk=payload["f"]).first()


def _check(payload: dict, expired: bool, fallback_address: FallbackAddress | None) -> LinkCheck:
    sent_to = payload["a"]
    if fallback_address is None:
        return LinkCheck(LinkState.REFUSED, sent_to, NOT_VALID)
    if sent_to != fallback_address.custom_from_address.lower():
        return LinkCheck(LinkState.REFUSED, sent_to, CHANGED.format(sent_to=sent_to), fallback_address)
    if fallback_address.custom_from_verified:
        return LinkCheck(LinkState.ALREADY_VERIFIED, sent_to, fallback_address=fallback_address)
    if expired:
        return LinkCheck(LinkState.REFUSED, sent_to, EXPIRED, fallback_address)
    nonce = fallback_address.custom_from_nonce
    if not nonce or not secrets.compare_digest(str(payload["n"]), nonce):
        return LinkCheck(LinkState.REFUSED, sent_to, REPLACED, fallback_address)
    return LinkCheck(LinkState.READY, sent_to, fallback_address=fallback_address)


def check_link(token: str) -> LinkCheck:
    """What this link would do if confirmed now; changes nothing (a GET, a mail scanner's fetch)."""
    payload, expired = _read_token(token)
    if payload is None:
        return LinkCheck(LinkState.REFUSED, refusal=NOT_VALID)
    return _check(payload, expired, _fallback_address_named(payload))


@transaction.atomic
def confirm_link(token: str) -> LinkCheck:
    """Verify the custom from address the link was sent to, if the link allows it now (C4).

    Needs no member: following the link proves control of the mailbox, nothing more.
    """
    payload, expired = _read_token(token)
    if payload is None:
        return LinkCheck(LinkState.REFUSED, refusal=NOT_VALID)
    # The row lock makes two clicks on one link verify once; the second finds it verified.
    fallback_address = _fallback_address_named(payload, lock=True)
    result = _check(payload, expired, fallback_address)
    if result.state != LinkState.READY:
        return result
    fallback_address.custom_from_verified_at = timezone.now()
    fallback_address.custom_from_nonce = ""
    with scope(account=fallback_address.account):
        fallback_address.save(update_fields=["custom_from_verified_at", "custom_from_nonce"])
        # No member acted: the actor stays empty, the details say who confirmed.
        record_change(
            None,
            fallback_address,
            "from_address_verified",
            address=fallback_address.custom_from_address,
            confirmed_by="the owner of the mailbox, through the emailed link",
        )
    return LinkCheck(LinkState.VERIFIED, result.sent_to, fallback_address=fallback_address)


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
