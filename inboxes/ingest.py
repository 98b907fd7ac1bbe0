"""Turn a spooled raw message into messages of the right conversations (G3).

`ingest_inbound` is what the Celery task calls with a claimed spool row. It
raises on failure, so the task records the reason and retries (G5), and it
is safe to run twice: each inbox keeps one message per Message-ID (G4).

The sender is authenticated here, once per spool row and never in the SMTP
session (G8): a slow or dead DNS costs a bounded time and gives a
`temperror` verdict, never a failed message.
"""

import logging

from django.db import IntegrityError
from django_scopes import scope, scopes_disabled

from channels_conn.authentication import AuthVerdict, Method, evaluate_sender
from channels_conn.models import FallbackAddress, InboundMessage
from channels_conn.parsing import parse_message
from inboxes.models import Message
from inboxes.reply_tokens import split_recipient
from inboxes.services import normalise_message_id, receive_message, synthetic_message_id

logger = logging.getLogger(__name__)


class NoRecipient(Exception):
    """None of the message's recipients is a fallback address any more."""


def resolve_fallback_address(recipient: str) -> FallbackAddress | None:
    """The fallback address a recipient names, ignoring case and a `+token`; None when unknown."""
    address, _ = split_recipient(recipient)
    # The recipient is what names the account, so this one lookup cannot run inside an account's
    # scope. Addresses are stored lower-case, so an exact match uses the unique index.
    with scopes_disabled():
        return (
            FallbackAddress.objects.select_related("account", "channel__inbox__account")
            .filter(address=address)
            .first()
        )


def authenticate_sender(inbound: InboundMessage) -> AuthVerdict:
    """The sender authentication of a spooled message; not verified when the evaluation breaks (G8)."""
    try:
        return evaluate_sender(
            raw=bytes(inbound.raw), peer_ip=inbound.peer_ip, helo=inbound.helo, mail_from=inbound.mail_from
        )
    except Exception:
        # A bug in the evaluation must not hold mail back; it only withholds trust.
        logger.exception("inbound #%s: sender authentication failed", inbound.pk)
        return AuthVerdict(False, "", Method.NONE, "evaluation error")


def ingest_inbound(inbound: InboundMessage) -> None:
    """Parse a spooled message, authenticate its sender, and log it in each recipient's inbox (G3, G4, G8)."""
    parsed = parse_message(bytes(inbound.raw))
    verdict = authenticate_sender(inbound)
    # A token-bearing recipient first, so a copy to both `support@` and `support+token@` threads.
    recipients = sorted(inbound.rcpt_tos, key=lambda recipient: "+" not in recipient.split("@")[0])
    delivered = 0
    for recipient in recipients:
        fallback_address = resolve_fallback_address(recipient)
        if fallback_address is None:
            logger.warning("inbound #%s: %r is no longer a fallback address", inbound.pk, recipient)
            continue
        channel = fallback_address.channel
        if not channel.enabled:
            # F2: mail to a channel that is off is neither shown nor logged.
            logger.info("inbound #%s: channel for %r is off; not logged", inbound.pk, recipient)
            delivered += 1
            continue
        inbox = channel.inbox
        with scope(account=fallback_address.account):
            try:
                receive_message(
                    inbox,
                    parsed,
                    recipient=recipient,
                    inbound=inbound,
                    verdict=verdict,
                    fallback_address=fallback_address,
                )
            except IntegrityError:
                # Another worker stored the same Message-ID first (G4); anything else is a failure.
                message_id = normalise_message_id(parsed.message_id) or synthetic_message_id(parsed, inbound)
                if not Message.objects.filter(
                    account=inbox.account, inbox=inbox, message_id=message_id
                ).exists():
                    raise
        delivered += 1
    if not delivered:
        raise NoRecipient(f"None of the recipients {inbound.rcpt_tos!r} is a fallback address.")
