"""What a recipient address names: one resolver for the ingress, the pipeline and threading (G1, G3, A2).

`Support+Token@Acme.Inbound.Example` names the fallback address
`support@acme.inbound.example` (case folded, `+token` set aside for
threading). The address names the account, so these lookups run before
any account scope exists: scopes are disabled here, in plain sight.
"""

import functools
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django_scopes import scopes_disabled

from channels_conn.models import FallbackAddress
from inboxhub.lib.db import on_live_connection

RELAY_DENIED = "550 5.7.1 Relay access denied"
UNKNOWN_RECIPIENT = "550 5.1.1 Recipient address rejected: no such mailbox here"
CHANNEL_OFF = "550 5.2.1 Recipient address rejected: this channel is turned off"
RECIPIENT_OK = "250 2.1.5 Ok"
CACHE_SECONDS = 2
CACHE_SIZE = 10_000


def split_recipient(recipient: str) -> tuple[str, str]:
    """`Support+Token@Host` → (`support@host`, `token`): the address to look up and the token, if any."""
    local, _, domain = recipient.strip().lower().rpartition("@")
    base, _, token = local.partition("+")
    return f"{base}@{domain}", token


@dataclass(frozen=True)
class Recipient:
    """What RCPT learns about one address: the reply to send, and the account it names when accepted."""

    reply: str
    account_id: int | None = None

    @property
    def accepted(self) -> bool:
        return self.reply.startswith("2")


def check_recipient(address: str) -> Recipient:
    """Decide the RCPT reply for an address (G1, F2); runs in one of the ingress's database threads.

    Any subdomain of ours that names no fallback address is an unknown
    recipient, so the reply never tells whether an account exists (A2).
    """
    local, at, domain = address.rpartition("@")
    domain = domain.lower().rstrip(".")
    subdomain = domain.removesuffix("." + settings.INBOUND_DOMAIN.lower())
    if not at or not local or subdomain == domain or not subdomain or "." in subdomain:
        return Recipient(RELAY_DENIED)
    mailbox, _ = split_recipient(f"{local}@{domain}")
    if mailbox.startswith("@"):
        return Recipient(UNKNOWN_RECIPIENT)
    found = on_live_connection(lambda: _account_and_enabled(mailbox))
    if found is None:
        return Recipient(UNKNOWN_RECIPIENT)
    account_id, enabled = found
    return Recipient(RECIPIENT_OK, account_id) if enabled else Recipient(CHANNEL_OFF)


def _account_and_enabled(address: str) -> tuple[int, bool] | None:
    # A hand-written query rather than the ORM's: RCPT is on the ingress's hot path, which is CPU-bound
    # (issue 4). Addresses are stored lower-case, so an exact match uses the unique index.
    with connection.cursor() as cursor:
        cursor.execute(_RECIPIENT_QUERY(), [address])
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


@functools.cache
def _RECIPIENT_QUERY() -> str:  # noqa: N802 - a constant, built once the models are loaded
    address = FallbackAddress._meta
    channel = address.get_field("channel")
    channel_table = channel.related_model._meta.db_table
    enabled = channel.related_model._meta.get_field("enabled").column
    return (
        f"SELECT a.{address.get_field('account').column}, c.{enabled} "  # noqa: S608 - names from the models
        f"FROM {address.db_table} a "
        f"JOIN {channel_table} c ON c.{channel.target_field.column} = a.{channel.column} "
        f"WHERE a.{address.get_field('address').column} = %s LIMIT 1"
    )


class RecipientCache:
    """RCPT's answers by lower-cased address for CACHE_SECONDS, for one event loop's thread.

    Saves a database round trip and a thread hop on nearly every message
    (issue 4); the price is that a channel switched off (or an address
    removed) is still accepted for up to CACHE_SECONDS, and one switched on
    refused as long.
    """

    def __init__(self) -> None:
        self._answers: dict[str, tuple[Recipient, float]] = {}

    def get(self, address: str) -> Recipient | None:
        cached = self._answers.get(address.lower())
        return cached[0] if cached is not None and cached[1] > time.monotonic() else None

    def put(self, address: str, recipient: Recipient) -> None:
        if len(self._answers) >= CACHE_SIZE:
            self._answers.clear()
        self._answers[address.lower()] = (recipient, time.monotonic() + CACHE_SECONDS)


def fallback_address_for(recipient: str) -> FallbackAddress | None:
    """The fallback address a recipient names, with its account, channel and inbox; None when unknown."""
    address, _ = split_recipient(recipient)
    with scopes_disabled():
        return (
            FallbackAddress.objects.select_related("account", "channel__inbox__account")
            .filter(address=address)
            .first()
        )


def accounts_of(rcpt_tos: list[str]) -> dict[str, int]:
    """The account each known recipient names, by recipient; unknown ones are left out."""
    addresses = {recipient: split_recipient(recipient)[0] for recipient in rcpt_tos}
    with scopes_disabled():
        known = dict(
            FallbackAddress.objects.filter(address__in=set(addresses.values())).values_list(
                "address", "account_id"
            )
        )
    return {recipient: known[address] for recipient, address in addresses.items() if address in known}
