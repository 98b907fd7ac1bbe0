"""Which conversation an incoming message belongs to: reply token, In-Reply-To, References (G3, G4, A3)."""

import hashlib
from dataclasses import dataclass

from channels_conn.models import InboundMessage
from channels_conn.recipients import split_recipient
from inboxes.models import Conversation, Inbox, Message
from inboxes.reply_tokens import verify_reply_token
from inboxhub.lib.mail.parsing import ParsedMessage

# PostgreSQL's btree index holds about 2,700 bytes a row; longer ids are stored as a hash.
MESSAGE_ID_MAX_BYTES = 900
# Bounds the threading query; real References headers hold a few dozen ids at most.
MAX_THREADING_IDS = 100


def normalise_message_id(message_id: str) -> str:
    message_id = (message_id or "").strip().strip("<>").strip()
    if len(message_id.encode("utf-8", "surrogatepass")) > MESSAGE_ID_MAX_BYTES:
        digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
        return f"sha256-{digest}@long-message-id.invalid"
    return message_id


def synthetic_message_id(parsed: ParsedMessage, inbound: InboundMessage | None) -> str:
    """A stable id for a message without Message-ID, so a re-run of the same raw message dedupes (G4)."""
    if inbound is not None:
        source = bytes(inbound.raw)
    else:
        source = "\n".join(
            [parsed.sender.email, parsed.subject, parsed.date.isoformat() if parsed.date else "", parsed.text]
        ).encode("utf-8", "surrogatepass")
    return f"sha256-{hashlib.sha256(source).hexdigest()}@no-message-id.invalid"


@dataclass
class Threading:
    conversation: Conversation | None
    threaded_by: str
    note: str


def thread_message(inbox: Inbox, parsed: ParsedMessage, *, recipient: str) -> Threading:
    """Find the conversation a message belongs to: reply token, In-Reply-To, References; or none (G3).

    Every lookup is limited to this account and this inbox: another account's
    Message-ID never threads (A3), and a token that does not verify is ignored.
    """
    notes = []
    _, token = split_recipient(recipient)
    if token:
        conversation_id = verify_reply_token(inbox.account_id, token)
        conversation = (
            inbox.conversations.filter(account=inbox.account, pk=conversation_id)
            .select_related("contact")
            .first()
            if conversation_id
            else None
        )
        if conversation is not None:
            return Threading(
                conversation,
                Message.ThreadedBy.REPLY_TOKEN,
                "Threaded by the reply address: its token is signed for this conversation.",
            )
        notes.append("The reply address carried a token that does not verify here; it was ignored.")
    in_reply_to = [normalise_message_id(i) for i in parsed.in_reply_to[:MAX_THREADING_IDS] if i.strip()]
    references = [normalise_message_id(i) for i in parsed.references[-MAX_THREADING_IDS:] if i.strip()]
    for threaded_by, ids in (
        (Message.ThreadedBy.IN_REPLY_TO, in_reply_to),
        (Message.ThreadedBy.REFERENCES, references),
    ):
        if not ids:
            continue
        known = {
            message.message_id: message
            for message in Message.objects.filter(
                account=inbox.account, inbox=inbox, message_id__in=ids
            ).select_related("conversation__contact")
        }
        # The latest reference that matches is the closest ancestor.
        for message_id in reversed(ids):
            if message_id in known:
                header = "In-Reply-To" if threaded_by == Message.ThreadedBy.IN_REPLY_TO else "References"
                notes.append(f"Threaded by {header}: <{message_id}> is a message of this conversation.")
                return Threading(known[message_id].conversation, threaded_by, " ".join(notes))
    notes.append(
        "No reply token, In-Reply-To or References matched a message in this inbox, "
        "so it started a new conversation."
    )
    return Threading(None, Message.ThreadedBy.NEW_CONVERSATION, " ".join(notes))
