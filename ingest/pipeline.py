"""The mail path, top-down: from a spooled raw message to stored, routed conversations (G3–G5, G8).

    claim the spool row            channels_conn.spool
    parse                          inboxhub.lib.mail.parsing
    authenticate the sender        inboxhub.lib.mail.authentication
    resolve each recipient         channels_conn.recipients
    contact, thread, store         inboxes.receiving
    route a new conversation       routing.services
    mark the row processed         channels_conn.spool

One transaction per spool row: its messages and its processed mark commit
together. A failure is recorded on the row and retried with backoff, or
failed at once when the message itself is at fault (G5). Safe to run twice:
the claim is a conditional update and each inbox keeps one message per
Message-ID (G4). The sender is authenticated here, once per row and never in
the SMTP session: a slow or dead DNS costs a bounded time and gives a
`temperror` verdict, never a failed message.
"""

import logging
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_scopes import scope

from channels_conn import recipients, spool
from channels_conn.models import FallbackAddress, InboundMessage
from inboxes.models import Message
from inboxes.receiving import receive_message
from inboxes.threads import normalise_message_id, synthetic_message_id
from inboxhub.lib.db import on_live_connection
from inboxhub.lib.mail.authentication import AuthVerdict, Method, evaluate_sender
from inboxhub.lib.mail.parsing import ParsedMessage, parse_message
from routing.services import route_new_conversation
from tickets.services import open_ticket_for_new_conversation

logger = logging.getLogger(__name__)

State = InboundMessage.State


class NoRecipient(Exception):
    """None of the message's recipients is a fallback address any more."""


def process_inbound_message(inbound_id: int) -> str:
    """Claim a spooled message, ingest it, and record the outcome (G3, G5); returns the new state.

    Only the worker whose conditional update claims the row processes it;
    "skipped" when another has it or it is done.
    """
    inbound = on_live_connection(lambda: spool.claim_inbound(inbound_id, timezone.now()))
    if inbound is None:
        return "skipped"
    try:
        with transaction.atomic():
            ingest_inbound(inbound)
            spool.mark_processed(inbound)
    except Exception as exc:
        logger.warning("inbound #%s attempt %s failed", inbound_id, inbound.attempts, exc_info=True)
        return spool.mark_failed(inbound, exc)
    return State.PROCESSED


def process_inbound_batch(inbound_ids: list[int]) -> dict[str, str]:
    """Process each id as `process_inbound_message` does; each id's outcome by id (as a string).

    A message fails or succeeds on its own. None starts after INGEST_BATCH_SECONDS:
    the rest are enqueued anew (or left to the sweep), so a slow message never
    eats into the next one's share of the task's time limits.
    """
    deadline = time.monotonic() + settings.INGEST_BATCH_SECONDS
    outcomes: dict[str, str] = {}
    for position, inbound_id in enumerate(inbound_ids):
        if position and time.monotonic() > deadline:  # the first always runs: every batch makes progress
            rest = inbound_ids[position:]
            spool.enqueue_inbound_batch(rest)
            outcomes.update((str(pk), "requeued") for pk in rest)
            break
        outcomes[str(inbound_id)] = process_inbound_message(inbound_id)
    return outcomes


def ingest_inbound(inbound: InboundMessage) -> None:
    """Parse a claimed row, authenticate its sender, and receive it in each recipient's inbox (G3, G4, G8)."""
    parsed = parse_message(bytes(inbound.raw))
    verdict = authenticate_sender(inbound)
    delivered = 0
    # A token-bearing recipient first, so a copy to both `support@` and `support+token@` threads.
    for recipient in sorted(inbound.rcpt_tos, key=lambda rcpt: "+" not in rcpt.split("@")[0]):
        fallback_address = recipients.fallback_address_for(recipient)
        if fallback_address is None or inbound.account_id not in (None, fallback_address.account_id):
            logger.warning("inbound #%s: %r is no longer a fallback address", inbound.pk, recipient)
            continue
        delivered += 1
        if not fallback_address.channel.enabled:
            # F2: mail to a channel that is off is neither shown nor logged.
            logger.info("inbound #%s: channel for %r is off; not logged", inbound.pk, recipient)
            continue
        with scope(account=fallback_address.account):
            _receive(inbound, parsed, verdict, fallback_address=fallback_address, recipient=recipient)
    if not delivered:
        raise NoRecipient(f"None of the recipients {inbound.rcpt_tos!r} is a fallback address.")


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


def _receive(
    inbound: InboundMessage,
    parsed: ParsedMessage,
    verdict: AuthVerdict,
    *,
    fallback_address: FallbackAddress,
    recipient: str,
) -> None:
    """Store the message in one inbox, and route the conversation it started (D)."""
    inbox = fallback_address.channel.inbox
    try:
        received = receive_message(
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
        if not Message.objects.filter(account=inbox.account, inbox=inbox, message_id=message_id).exists():
            raise
        return
    if received.started_conversation:
        route_new_conversation(received.message.conversation)
        open_ticket_for_new_conversation(received.message.conversation)
