"""Which conversation an incoming message belongs to: reply token, In-Reply-To, References (G3, G4, A3).

Every Message-ID an incoming message names is kept as a ThreadKey of the
conversation it joined, so that a parent processed after its reply, in any
worker, finds that reply's conversation under its own id. `lock_thread`
serializes, until the transaction ends, every message naming one of the same
ids in an inbox: the lookup and the write cannot interleave, so a thread
never splits. Where one message proves two conversations to be one thread,
the newer is merged into the older.
"""

import hashlib
from dataclasses import dataclass, field

from django.db import IntegrityError, OperationalError, connection, transaction

from channels_conn.models import InboundMessage
from channels_conn.recipients import split_recipient
from inboxes.activity import Kind, record_event
from inboxes.models import NEW_CONVERSATION_NOTE, Contact, Conversation, Inbox, Message, ThreadKey
from inboxes.reply_tokens import verify_reply_token
from inboxhub.lib.db import lock_rows
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
    # Conversations the message proves to be this thread too: merged into `conversation`.
    merged: list[Conversation] = field(default_factory=list)


def named_message_ids(parsed: ParsedMessage) -> tuple[list[str], list[str]]:
    """The In-Reply-To and References ids, normalised and bounded."""
    in_reply_to = [normalise_message_id(i) for i in parsed.in_reply_to[:MAX_THREADING_IDS] if i.strip()]
    references = [normalise_message_id(i) for i in parsed.references[-MAX_THREADING_IDS:] if i.strip()]
    return in_reply_to, references


def _lock_key(inbox_id: int, message_id: str) -> int:
    digest = hashlib.blake2b(f"{inbox_id}\x00{message_id}".encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def lock_thread(inbox: Inbox, message_ids: list[str]) -> None:
    """Hold, until the transaction ends, a lock on each id of this inbox (PostgreSQL advisory locks).

    Taken in key order, so two messages naming the same ids never deadlock.
    SQLite lets one transaction write at a time and needs none.
    """
    if connection.vendor != "postgresql" or not message_ids:
        return
    keys = sorted({_lock_key(inbox.pk, message_id) for message_id in message_ids})
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k", [keys])


def threading_ids(parsed: ParsedMessage, message_id: str) -> list[str]:
    """The ids a message's threading looks up and locks: In-Reply-To, References, its own."""
    in_reply_to, references = named_message_ids(parsed)
    return list(dict.fromkeys([*in_reply_to, *references, message_id]))


# (message_id, conversation_id, rank): rank 0 for a message of the inbox with that id, 1 for a thread
# key naming it.
Named = list[tuple[str, int, int]]


def named_in_inbox(inbox: Inbox, message_ids: list[str]) -> Named:
    """Which conversations of this inbox hold or named these ids: its messages' first, then its keys.

    One hand-written statement, read on every message (issue 18): the ORM's union cost more CPU
    than anything else in threading. Scoped to the account by its id, as the ORM would be.
    """
    if not message_ids:
        return []
    ids = ", ".join(["%s"] * len(message_ids))
    quote = connection.ops.quote_name
    selects = []
    for model, rank in ((Message, 0), (ThreadKey, 1)):
        meta = model._meta
        column = {name: quote(meta.get_field(name).column) for name in ("account", "inbox", "message_id")}
        selects.append(
            f"SELECT {column['message_id']}, {quote(meta.get_field('conversation').column)}, {rank} "  # noqa: S608 - names from the models
            f"FROM {quote(meta.db_table)} WHERE {column['account']} = %s AND {column['inbox']} = %s "
            f"AND {column['message_id']} IN ({ids})"
        )
    params = [inbox.account_id, inbox.pk, *message_ids]
    with connection.cursor() as cursor:
        cursor.execute(f"{selects[0]} UNION ALL {selects[1]} ORDER BY 3", params * 2)
        return [tuple(row) for row in cursor.fetchall()]


def thread_message(
    inbox: Inbox, parsed: ParsedMessage, *, recipient: str, message_id: str, named: Named | None = None
) -> Threading:
    """Find the conversation a message belongs to: reply token, In-Reply-To, References, its own
    earlier replies; or none (G3). Call it under `lock_thread` of the same ids.

    Every lookup is limited to this account and this inbox: another account's
    Message-ID never threads (A3), and a token that does not verify is ignored.
    `named`: `named_in_inbox` of `threading_ids`, when the caller has read it under the lock.
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
    in_reply_to, references = named_message_ids(parsed)
    found, thread = _conversations_naming(inbox, [*in_reply_to, *references, message_id], named)
    chosen, threaded_by = None, Message.ThreadedBy.NEW_CONVERSATION
    for by, ids, header in (
        (Message.ThreadedBy.IN_REPLY_TO, in_reply_to, "In-Reply-To"),
        (Message.ThreadedBy.REFERENCES, references, "References"),
    ):
        # The latest reference that matches is the closest ancestor.
        matched = next((i for i in reversed(ids) if i in found), None)
        if matched is not None:
            chosen, threaded_by = found[matched], by
            notes.append(f"Threaded by {header}: <{matched}> is a message of this thread.")
            break
    if chosen is None and message_id in found:
        chosen, threaded_by = found[message_id], Message.ThreadedBy.EARLIER_REPLY
        notes.append("Threaded with its replies: they arrived first and name this message.")
    if chosen is None:
        notes.append(NEW_CONVERSATION_NOTE)
        return Threading(None, threaded_by, " ".join(notes))
    # The oldest conversation of the thread keeps it, with its assignment (G3).
    keep, merged = thread[0], thread[1:]
    if merged:
        names = ", ".join(f"#{conversation.pk}" for conversation in merged)
        notes.append(f"It names messages of conversations {names} too: they were merged into #{keep.pk}.")
    return Threading(keep, threaded_by, " ".join(notes), merged)


def _age(conversation: Conversation) -> tuple:
    return conversation.created_at, conversation.pk


def _conversations_naming(
    inbox: Inbox, message_ids: list[str], named: Named | None = None
) -> tuple[dict[str, Conversation], list[Conversation]]:
    """Each id's conversation in this inbox (a message with that id, or one that named it), and every
    conversation met, oldest first. `named`: the first reading of the ids, when already made."""
    ids = list(dict.fromkeys(message_ids))
    # A conversation met here may be merged away meanwhile by a message naming other ids of the
    # thread: its row is locked, and the lookup runs again when one went while we waited.
    for attempt in range(5):
        # One query: the messages with these ids (first), then the keys naming them.
        pairs = named if attempt == 0 and named is not None else named_in_inbox(inbox, ids)
        wanted = {conversation_id for _, conversation_id, _ in pairs}
        if not wanted:
            return {}, []
        by_pk = {conversation.pk: conversation for conversation in _lock_conversations(inbox, wanted)}
        if len(by_pk) < len(wanted):
            continue
        found = {}
        for message_id, conversation_id, _ in pairs:
            found.setdefault(message_id, by_pk[conversation_id])
        return found, sorted(by_pk.values(), key=_age)
    raise OperationalError("The conversations of this thread kept being merged; try again.")


def _lock_conversations(inbox: Inbox, pks: set[int]) -> list[Conversation]:
    """These conversations of the inbox's account, locked in id order, then read with their contacts.

    `lock_rows` by hand, in its two statements (the lock, then a read that sees what committed
    while it waited): the ORM built both anew for every reply, more CPU than the rest of its
    threading (issue 18). Account filtered explicitly, names from the models.
    """
    if connection.vendor != "postgresql":
        # SQLite's dates need the ORM's converters; it writes one transaction at a time anyway.
        rows = Conversation.objects.filter(account=inbox.account, pk__in=pks)
        return lock_rows(rows.select_related("contact").order_by("pk"))
    quote = connection.ops.quote_name
    conversations, contacts = Conversation._meta.concrete_fields, Contact._meta.concrete_fields
    table = quote(Conversation._meta.db_table)
    pk, account, contact_id = (
        quote(Conversation._meta.get_field(name).column) for name in ("id", "account", "contact")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {pk} FROM {table} WHERE {account} = %s AND {pk} IN ({', '.join(['%s'] * len(pks))}) "  # noqa: S608 - names from the models
            f"ORDER BY {pk} FOR UPDATE",
            [inbox.account_id, *pks],
        )
        locked = [conversation_id for (conversation_id,) in cursor.fetchall()]
        if not locked:
            return []
        columns = [f"c.{quote(f.column)}" for f in conversations] + [f"p.{quote(f.column)}" for f in contacts]
        cursor.execute(
            f"SELECT {', '.join(columns)} FROM {table} AS c JOIN {quote(Contact._meta.db_table)} AS p "  # noqa: S608
            f"ON p.{quote(Contact._meta.pk.column)} = c.{contact_id} "
            f"WHERE c.{account} = %s AND c.{pk} IN ({', '.join(['%s'] * len(locked))})",
            [inbox.account_id, *locked],
        )
        rows = cursor.fetchall()
    by_pk = {}
    for row in rows:
        found = Conversation.from_db(
            connection.alias, [f.attname for f in conversations], row[: len(conversations)]
        )
        found.contact = Contact.from_db(
            connection.alias, [f.attname for f in contacts], row[len(conversations) :]
        )
        by_pk[found.pk] = found
    return [by_pk[conversation_id] for conversation_id in locked if conversation_id in by_pk]


def record_thread_keys(conversation: Conversation, message_ids: list[str]) -> None:
    """Keep each id the message named as a key of its conversation (under `lock_thread`)."""
    ids = list(dict.fromkeys(message_ids))
    if not ids:
        return
    # Hand-written, as bulk_create(update_conflicts=True) would write it: on a reply, the ORM's
    # statement cost about a millisecond of CPU (issue 18). The account is in every row.
    meta = ThreadKey._meta
    quote = connection.ops.quote_name
    account, inbox, message_id, key_of = (
        quote(meta.get_field(name).column) for name in ("account", "inbox", "message_id", "conversation")
    )
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(ids))
    params = [
        value
        for named in ids
        for value in (conversation.account_id, conversation.inbox_id, named, conversation.pk)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({account}, {inbox}, {message_id}, {key_of}) "  # noqa: S608 - names from the model
            f"VALUES {rows} ON CONFLICT ({account}, {inbox}, {message_id}) "
            f"DO UPDATE SET {key_of} = EXCLUDED.{key_of}",
            params,
        )


def merge_conversation(keep: Conversation, other: Conversation) -> None:
    """Move everything of `other` (messages, keys, decisions, its ticket if `keep` has none) to `keep`.

    Related rows are found through the model's relations, so apps above this
    one (tickets, routing) need not be imported. A row that cannot move
    (a one-to-one `keep` already has, a unique pair) goes with `other`.
    """
    for relation in Conversation._meta.related_objects:
        if relation.many_to_many:
            continue
        rows = relation.related_model._base_manager.filter(**{relation.field.name: other})
        if (
            relation.one_to_one
            and relation.related_model._base_manager.filter(**{relation.field.name: keep}).exists()
        ):
            continue
        try:
            with transaction.atomic():
                rows.update(**{relation.field.name: keep})
        except IntegrityError:
            continue
    fields = ["last_message_at"]
    keep.last_message_at = max(keep.last_message_at, other.last_message_at)
    if keep.assignee_id is None and other.assignee_id is not None and keep.status == other.status:
        keep.assignee_id = other.assignee_id
        fields.append("assignee")
    keep.save(update_fields=fields)
    record_event(keep, Kind.MERGED, merged=other.pk, subject=other.subject)
    other.delete()
