"""The mail path, top-down: from a spooled raw message to stored, routed conversations (G3–G5, G8).

    claim the spool row            channels_conn.spool
    parse                          inboxhub.lib.mail.parsing
    authenticate the sender        inboxhub.lib.mail.authentication
    resolve each recipient         channels_conn.recipients
    a bounce of our reply          inboxes.bounces (marks the reply; nothing else)
    contact, thread, store         inboxes.receiving
    a ticket for a new one         tickets.services
    mark the row processed         channels_conn.spool
    then, committed: assign        routing.services (the tickets' owners follow)

One transaction per spool row: its messages, tickets and processed mark
commit together. Assignment comes after the commit, for every conversation
the rows of a task started at once (one lock of each inbox's rule); what a
killed worker leaves undecided, the sweep decides. A failure is recorded on
the row and retried with backoff, or failed at once when the message itself
is at fault (G5). Safe to run twice:
the claim is a conditional update and each inbox keeps one message per
Message-ID (G4). A copy for a channel turned off after the 250 fails the row
with that reason, the other copies stored: nothing accepted is dropped (G2).
The sender is authenticated here, once per row and never in the SMTP
session: a slow or dead DNS costs a bounded time and gives a `temperror`
verdict, never a failed message.
"""

import logging
import time
import traceback
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from channels_conn import recipients, spool
from channels_conn.models import FallbackAddress, InboundMessage
from inboxes.bounces import record_delivery_report
from inboxes.models import Conversation
from inboxes.receiving import MemberAddresses, receive_message
from inboxhub.lib.db import on_live_connection
from inboxhub.lib.mail.authentication import AuthVerdict, Method, evaluate_sender
from inboxhub.lib.mail.parsing import ParsedMessage, parse_message
from routing.selectors import waiting_inboxes
from routing.services import route_waiting
from tickets.models import TicketDefaults
from tickets.services import follow_assignees, mail_ticket_defaults, open_ticket_for_new_conversation

logger = logging.getLogger(__name__)

State = InboundMessage.State


class NoRecipient(Exception):
    """None of the message's recipients is a fallback address any more."""


class ChannelTurnedOff(spool.CannotIngest):
    """A recipient's channel was turned off between the 250 and processing: the copy waits on Failed
    messages for a Retry once it is on again (G2, F2). The other recipients' copies are stored."""

    def __init__(self, recipients: list[str], started: list[Conversation]) -> None:
        super().__init__(
            f"The channel of {', '.join(recipients)} was turned off after this message was accepted; "
            "turn it on again and retry."
        )
        self.started = started


class BatchLookups:
    """What the messages of one batch look up alike, read once for the batch (issue 18).

    The fallback address a recipient names (with its channel, inbox and
    account), an account's members (whose From is a member's), an inbox's
    ticket defaults. Made for one batch and dropped with it, so a change in
    the settings counts from the next batch; keyed by address, account and
    inbox, so one account's rows never answer for another account's message.
    """

    def __init__(self) -> None:
        self._addresses: dict[str, FallbackAddress | None] = {}
        self._members: dict[int, MemberAddresses] = {}
        self._ticket_defaults: dict[tuple[int, int], TicketDefaults | None] = {}

    def fallback_address(self, recipient: str) -> FallbackAddress | None:
        address, _ = recipients.split_recipient(recipient)
        if address not in self._addresses:
            self._addresses[address] = recipients.fallback_address_for(recipient)
        return self._addresses[address]

    def members(self, account_id: int) -> MemberAddresses:
        if account_id not in self._members:
            self._members[account_id] = MemberAddresses(account_id)
        return self._members[account_id]

    def ticket_defaults(self, account_id: int, inbox_id: int) -> TicketDefaults | None:
        key = (account_id, inbox_id)
        if key not in self._ticket_defaults:
            self._ticket_defaults[key] = mail_ticket_defaults(account_id, inbox_id)
        return self._ticket_defaults[key]


def process_inbound_message(inbound_id: int) -> str:
    """Claim a spooled message, ingest it, and record the outcome (G3, G5); returns the new state.

    Only the worker whose conditional update claims the row processes it;
    "skipped" when another has it or it is done.
    """
    outcome, started = _process(inbound_id, BatchLookups())
    assign_started(started)
    return outcome


def _loggable(text: str) -> str:
    """The text with any lone surrogate (a mail's undecodable byte) escaped: a UTF-8 log can write it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _process(inbound_id: int, lookups: BatchLookups) -> tuple[str, list[Conversation]]:
    inbound = on_live_connection(lambda: spool.claim_inbound(inbound_id, timezone.now()))
    if inbound is None:
        return "skipped", []
    try:
        with transaction.atomic():
            try:
                started = ingest_inbound(inbound, lookups)
            except ChannelTurnedOff as turned_off:
                # Raised after every other copy is stored, with no query failed: those commit.
                spool.mark_failed(inbound, turned_off)
                logger.info("inbound #%s: %s", inbound_id, turned_off)
                return State.FAILED, turned_off.started
            spool.mark_processed(inbound)
    except Exception as exc:
        # A mail the product refuses by rule (no sender, no recipient) is no fault: its reason, no traceback.
        expected = isinstance(exc, spool.CannotIngest)
        detail = "" if expected else "\n" + traceback.format_exc()
        reason = _loggable(f"{exc}{detail}")
        logger.warning("inbound #%s attempt %s failed: %s", inbound_id, inbound.attempts, reason)
        return spool.mark_failed(inbound, exc), []
    return State.PROCESSED, started


def process_inbound_batch(inbound_ids: list[int]) -> dict[str, str]:
    """Process each id as `process_inbound_message` does; each id's outcome by id (as a string).

    A message fails or succeeds on its own. None starts after INGEST_BATCH_SECONDS:
    the rest are enqueued anew (or left to the sweep), so a slow message never
    eats into the next one's share of the task's time limits.
    """
    deadline = time.monotonic() + settings.INGEST_BATCH_SECONDS
    outcomes: dict[str, str] = {}
    started: list[Conversation] = []
    lookups = BatchLookups()
    for position, inbound_id in enumerate(inbound_ids):
        if position and time.monotonic() > deadline:  # the first always runs: every batch makes progress
            rest = inbound_ids[position:]
            spool.enqueue_inbound_batch(rest)
            outcomes.update((str(pk), "requeued") for pk in rest)
            break
        outcome, new = _process(inbound_id, lookups)
        outcomes[str(inbound_id)] = outcome
        started += new
    assign_started(started)
    return outcomes


def assign_started(conversations: list[Conversation]) -> None:
    """Assign the conversations that committed rows started, inbox by inbox; tickets' owners follow (D, C11).

    A failure here loses nothing: the messages are stored, and the sweep
    decides the conversations left waiting (`assign_waiting_everywhere`).
    """
    for account_id, inbox_id in dict.fromkeys((c.account_id, c.inbox_id) for c in conversations):
        try:
            with scope(account=account_id), transaction.atomic():
                follow_assignees(route_waiting(account_id, inbox_id))
        except Exception:
            logger.exception(
                "assigning the new conversations of inbox #%s failed; the sweep retries", inbox_id
            )


def assign_waiting_everywhere(*, older_than_seconds: int = 30) -> int:
    """The sweep: decide the new conversations a killed or failing worker left waiting; how many (D)."""
    before = timezone.now() - timedelta(seconds=older_than_seconds)
    # A sweep across accounts: each inbox is then decided inside its own account's scope.
    with scopes_disabled():
        inboxes = list(waiting_inboxes(before))
    decided = 0
    for account_id, inbox_id in inboxes:
        with scope(account=account_id), transaction.atomic():
            decisions = route_waiting(account_id, inbox_id)
            follow_assignees(decisions)
        decided += len(decisions)
    return decided


def ingest_inbound(inbound: InboundMessage, lookups: BatchLookups | None = None) -> list[Conversation]:
    """Parse a claimed row, authenticate its sender, receive it in each recipient's inbox (G3, G4, G8).

    Returns the conversations it started, for `assign_started` once committed.
    """
    lookups = lookups or BatchLookups()
    parsed = parse_message(bytes(inbound.raw))
    verdict = authenticate_sender(inbound)
    delivered = 0
    started = []
    turned_off = []
    # A token-bearing recipient first, so a copy to both `support@` and `support+token@` threads.
    for recipient in sorted(inbound.rcpt_tos, key=lambda rcpt: "+" not in rcpt.split("@")[0]):
        fallback_address = lookups.fallback_address(recipient)
        if fallback_address is None or inbound.account_id not in (None, fallback_address.account_id):
            logger.warning("inbound #%s: %r is no longer a fallback address", inbound.pk, recipient)
            continue
        if not fallback_address.channel.enabled:
            # F2: mail to a channel that is off is neither shown nor logged; but this one got its 250
            # while the channel was on (the RCPT check refuses it otherwise), so it must not vanish.
            turned_off.append(recipient)
            continue
        delivered += 1
        with scope(account=fallback_address.account):
            conversation = _receive(
                inbound,
                parsed,
                verdict,
                fallback_address=fallback_address,
                recipient=recipient,
                lookups=lookups,
            )
        if conversation is not None:
            started.append(conversation)
    if turned_off:
        raise ChannelTurnedOff(turned_off, started)
    if not delivered:
        raise NoRecipient(f"None of the recipients {inbound.rcpt_tos!r} is a fallback address.")
    return started


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
    lookups: BatchLookups,
) -> Conversation | None:
    """Store the message in one inbox; the conversation it started, with its ticket, or None (C11).

    A bounce of one of the inbox's replies marks that reply instead, and starts nothing (RFC 3464).
    """
    inbox = fallback_address.channel.inbox
    if parsed.delivery_report is not None:
        reply = record_delivery_report(inbox, parsed.delivery_report)
        if reply is not None:
            logger.info("inbound #%s: a bounce of reply %s (%s)", inbound.pk, reply.pk, reply.delivery_state)
            return None
    # Two workers never store one Message-ID twice: `lock_thread` holds the second until the first
    # commits, and it then finds the message (G4). Any error fails the row's attempt, to be retried.
    received = receive_message(
        inbox,
        parsed,
        recipient=recipient,
        inbound=inbound,
        verdict=verdict,
        fallback_address=fallback_address,
        members=lookups.members(inbox.account_id),
    )
    if not received.started_conversation:
        return None
    conversation = received.message.conversation
    defaults = lookups.ticket_defaults(conversation.account_id, conversation.inbox_id)
    open_ticket_for_new_conversation(conversation, defaults=defaults, started=True)
    return conversation
