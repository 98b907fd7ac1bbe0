"""Search conversations by contact name or address, subject and message text (issue 17).

PostgreSQL: full-text search over the `search_vector` columns that triggers keep (migration
0018_search_vectors), each behind a GIN index on (account_id, search_vector). A message keeps its
stored vector only while it is recent (`STORED_VECTOR_DAYS`, migration 0024): its document is
`MESSAGE_DOCUMENT`, the stored vector or, once `forget_old_vectors` has set it to null, the same
vector computed from the row (issue 18: the vectors took more room than the text). The query is read by
`websearch_to_tsquery('simple', …)`: words, "quoted phrases", `or` and `-word`, in any language
(no stemming). Three lookups find candidates, each scoped to the account and to the inboxes the
searcher may see, each capped at its newest matches: messages (their subject, sender and text;
`MESSAGE_CANDIDATES`), conversations by subject and conversations of contacts by name or address
(`CANDIDATES`). Every word must be in one of these documents: a message's subject and text
together, not the contact's name and a reply's text. A conversation's score is its best message's
rank plus its subject's and its contact's (subjects, senders and contacts weigh A, text B).

Why the caps: a word in most of 300,000 messages would have PostgreSQL fetch and rank every one of
them (hundreds of ms). Capped, a common word walks the newest messages on the index
`message_account_recent` and stops after the cap, while a rare word is read from the GIN index and
ranked in full. Status and assignee are then checked on the candidates' conversations (a join
would make PostgreSQL visit every message of every conversation in the filter first), so a capped
search is complete back to its oldest candidate message: the page says since when, and a date
range reaches further back.

SQLite (`make run` without PostgreSQL) has no tsvector: every word must appear (`icontains`) in
the contact's name or address, the subject or a message, newest first. Both highlight the same way,
in Python: `highlight` escapes the text and wraps the query's words in `<mark>`.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorField
from django.db import connection
from django.db.models import Exists, F, FloatField, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Extract, Left
from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString

from inboxes.models import Contact, Conversation, Message
from inboxhub.models import Membership

CANDIDATES = 500  # per lookup of conversations and contacts: the newest matches that are ranked
MESSAGE_CANDIDATES = 500  # the newest matching messages
PAGE_SIZE = 25
MAX_QUERY_LENGTH = 200
SNIPPET_CONTEXT = 80  # characters shown before and after the first matched word
SNIPPET_SOURCE = 20_000  # characters of a message read for its snippet
CONFIG = "simple"
# How long a message keeps its stored search vector: a common word walks the newest messages and ranks
# what it finds there, which must not compute each vector. Older messages compute theirs when a search
# reaches them, a few per search (issue 18).
STORED_VECTOR_DAYS = 30
FORGET_BATCH = 1000
FORGET_BUDGET_SECONDS = 30.0  # per run, well inside the task's time limit; the next run goes on
UNASSIGNED = "none"


@dataclass
class Filters:
    """What narrows a search; `inbox_ids` are the inboxes searched, all visible to the searcher."""

    inbox_ids: list[int]
    status: str = ""  # "", "open" or "closed"
    assignee: str = ""  # "", UNASSIGNED or a member's id
    since: date | None = None  # last message on or after
    until: date | None = None  # last message on or before


@dataclass
class Hit:
    conversation: Conversation
    subject: SafeString
    contact_name: SafeString
    contact_email: SafeString
    snippet: SafeString


@dataclass
class Results:
    hits: list[Hit] = field(default_factory=list)
    total: int = 0  # conversations found (among the candidates)
    capped: bool = False  # a lookup reached CANDIDATES: more matches exist than were ranked
    page: int = 1
    has_next: bool = False
    searched_since: datetime | None = None  # messages older than this were not searched (the cap)


@dataclass
class _Candidate:
    score: float = 0.0
    at: float = 0.0  # seconds since the epoch: the newest matching message, or the last message
    message_id: int | None = None
    message_rank: float = -1.0

    def seen(self, at: float) -> None:
        self.at = max(self.at, at)


def search_conversations(
    member: Membership,
    text: str,
    filters: Filters,
    *,
    order: str = "relevance",
    page: int = 1,
    full_text: bool | None = None,
) -> Results:
    """The conversations matching `text` in the searched inboxes, best (or newest) first, a page.

    `full_text`: PostgreSQL's full-text search, or the fallback; by default, whichever the database has.
    """
    text = text.strip()[:MAX_QUERY_LENGTH]
    words = query_words(text)
    if not words or not filters.inbox_ids:
        return Results(page=page)
    if full_text is None:
        full_text = connection.vendor == "postgresql"
    if full_text:
        candidates, capped, since = _postgres_candidates(member, text, filters)
    else:
        candidates, capped, since = _fallback_candidates(member, words, filters)
    if order == "newest":
        ranked = sorted(candidates.items(), key=lambda item: (item[1].at, item[0]), reverse=True)
    else:
        ranked = sorted(
            candidates.items(), key=lambda item: (item[1].score, item[1].at, item[0]), reverse=True
        )
    start = (page - 1) * PAGE_SIZE
    chosen = ranked[start : start + PAGE_SIZE]
    chosen_ids = [(pk, candidate.message_id) for pk, candidate in chosen]
    hits = _hits(member, chosen_ids, words, filters.inbox_ids, full_text=full_text)
    searched_since = datetime.fromtimestamp(since, UTC) if since is not None else None
    return Results(hits, len(ranked), capped, page, len(ranked) > start + PAGE_SIZE, searched_since)


# --- the query's words and their highlighting -----------------------------------------

_TOKEN = re.compile(r'-?"[^"]*"?|\S+')
_WORD = re.compile(r"\w+(?:[.@'+-]\w+)*")


def query_words(text: str) -> list[str]:
    """The words of a query that a match contains, lower-case: not `-excluded` ones, nor `or`."""
    words = []
    for token in _TOKEN.findall(text):
        if token.startswith("-") or token.lower() == "or":
            continue
        words += [word.lower() for word in _WORD.findall(token)]
    return list(dict.fromkeys(words))


def _pattern(words: list[str]) -> re.Pattern:
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def highlight(value: str, words: list[str], *, snippet: bool = False) -> SafeString:
    """`value` escaped, each of the words in `<mark>`; a snippet is cut around the first one.

    Everything from outside is escaped here; only the `<mark>` tags this function writes are markup.
    """
    if not value or not words:
        return escape(value or "")
    pattern = _pattern(words)
    if snippet:
        first = pattern.search(value)
        begin = max(0, first.start() - SNIPPET_CONTEXT) if first else 0
        end = (first.end() if first else 0) + SNIPPET_CONTEXT
        value = (
            ("…" if begin else "") + " ".join(value[begin:end].split()) + ("…" if end < len(value) else "")
        )
    pieces, last = [], 0
    for match in pattern.finditer(value):
        pieces.append(value[last : match.start()])
        pieces.append(format_html("<mark>{}</mark>", match.group()))
        last = match.end()
    pieces.append(value[last:])
    # Text escaped, the marks kept: format_html_join escapes what is not already markup.
    return format_html_join("", "{}", ((piece,) for piece in pieces))


# --- PostgreSQL ------------------------------------------------------------------------


# A message's document exactly as its GIN index has it (migration 0024): PostgreSQL uses an expression
# index only for the same expression. The stored vector while the message is recent, else the vector
# computed from the row, by the expression migration 0018's trigger stores.
MESSAGE_DOCUMENT = (
    'COALESCE("inboxes_message"."search_vector", '
    """setweight(to_tsvector('simple'::regconfig, left("inboxes_message"."subject", 2000) || ' ' """
    """|| "inboxes_message"."from_name" || ' ' || "inboxes_message"."from_email" || ' ' """
    """|| replace("inboxes_message"."from_email", '@', ' ')), 'A') """
    """|| setweight(to_tsvector('simple'::regconfig, left("inboxes_message"."text", 100000)), 'B'))"""
)
CONVERSATION_DOCUMENT = '"inboxes_conversation"."search_vector"'
CONTACT_DOCUMENT = '"inboxes_contact"."search_vector"'


def _vector(document: str) -> RawSQL:
    # Columns the migrations add and their triggers keep; not model fields (see migration 0018).
    return RawSQL(document, [], output_field=SearchVectorField())  # noqa: S611  a constant


def _epoch(field: str) -> Cast:
    # Seconds as a float: a thousand candidates load far faster than as aware datetimes.
    return Cast(Extract(field, "epoch"), FloatField())


def _date_range(filters: Filters, field: str) -> Q:
    zone = timezone.get_current_timezone()
    condition = Q()
    if filters.since:
        condition &= Q(**{f"{field}__gte": datetime.combine(filters.since, time(), zone)})
    if filters.until:
        condition &= Q(**{f"{field}__lt": datetime.combine(filters.until + timedelta(days=1), time(), zone)})
    return condition


def _state_filters(filters: Filters, prefix: str = "") -> Q:
    """Status and assignee, of the conversation (`prefix` reaches it from a message)."""
    condition = Q()
    if filters.status:
        condition &= Q(**{f"{prefix}status": filters.status})
    if filters.assignee == UNASSIGNED:
        condition &= Q(**{f"{prefix}assignee__isnull": True})
    elif filters.assignee:
        condition &= Q(**{f"{prefix}assignee_id": int(filters.assignee)})
    return condition


def _conversation_filters(filters: Filters) -> Q:
    return _state_filters(filters) & _date_range(filters, "last_message_at")


def _postgres_candidates(member: Membership, text: str, filters: Filters) -> tuple[dict, bool, float | None]:
    query = SearchQuery(text, config=CONFIG, search_type="websearch")
    account_id = member.account_id
    candidates: dict[int, _Candidate] = {}

    # The newest matching messages, without a join: on the index `message_account_recent` a common word
    # stops after MESSAGE_CANDIDATES rows. The date range applies to the message itself; status and
    # assignee to its conversation, checked next for these candidates only, so the results are every
    # match newer than the oldest candidate (the page says since when).
    messages = (
        Message.objects.filter(account_id=account_id, inbox_id__in=filters.inbox_ids)
        .filter(_date_range(filters, "created_at"))
        .annotate(vector=_vector(MESSAGE_DOCUMENT))
        .filter(vector=query)
        .annotate(rank=SearchRank(F("vector"), query, normalization=1), at=_epoch("created_at"))
        .order_by("-created_at", "-id")
        .values_list("conversation_id", "id", "rank", "at")[:MESSAGE_CANDIDATES]
    )
    message_rows = list(messages)
    messages_capped = len(message_rows) == MESSAGE_CANDIDATES
    searched_since = message_rows[-1][3] if messages_capped else None
    if message_rows and _state_filters(filters):
        kept = set(
            Conversation.objects.filter(account_id=account_id, pk__in={row[0] for row in message_rows})
            .filter(_state_filters(filters))
            .values_list("id", flat=True)
        )
        message_rows = [row for row in message_rows if row[0] in kept]
    for conversation_id, message_id, rank, at in message_rows:
        candidate = candidates.setdefault(conversation_id, _Candidate())
        candidate.seen(at)
        if rank > candidate.message_rank:
            candidate.message_id, candidate.message_rank = message_id, rank

    conversations = Conversation.objects.filter(account_id=account_id, inbox_id__in=filters.inbox_ids).filter(
        _conversation_filters(filters)
    )
    subject_rows = list(
        conversations.annotate(vector=_vector(CONVERSATION_DOCUMENT))
        .filter(vector=query)
        .annotate(rank=SearchRank(F("vector"), query), at=_epoch("last_message_at"))
        .order_by("-last_message_at", "-id")
        .values_list("id", "rank", "at")[:CANDIDATES]
    )
    contact_rank = dict(
        Contact.objects.filter(account_id=account_id)
        .annotate(vector=_vector(CONTACT_DOCUMENT))
        .filter(vector=query)
        .annotate(rank=SearchRank(F("vector"), query))
        .order_by("-id")
        .values_list("id", "rank")[:CANDIDATES]
    )
    contact_rows = []
    if contact_rank:
        contact_rows = list(
            conversations.filter(contact_id__in=list(contact_rank))
            .annotate(at=_epoch("last_message_at"))
            .order_by("-last_message_at", "-id")
            .values_list("id", "contact_id", "at")[:CANDIDATES]
        )
    for conversation_id, rank, at in subject_rows:
        candidate = candidates.setdefault(conversation_id, _Candidate())
        candidate.score += rank
        candidate.seen(at)
    for conversation_id, contact_id, at in contact_rows:
        candidate = candidates.setdefault(conversation_id, _Candidate())
        candidate.score += contact_rank[contact_id]
        candidate.seen(at)
    for candidate in candidates.values():
        candidate.score += max(candidate.message_rank, 0.0)
    capped = messages_capped or CANDIDATES in (len(subject_rows), len(contact_rank), len(contact_rows))
    return candidates, capped, searched_since


# --- SQLite and any other database ---------------------------------------------------------


def _fallback_candidates(
    member: Membership, words: list[str], filters: Filters
) -> tuple[dict, bool, float | None]:
    """Every word in the contact's name or address, the subject or one of the messages; newest first."""
    conversations = Conversation.objects.filter(
        account_id=member.account_id, inbox_id__in=filters.inbox_ids
    ).filter(_conversation_filters(filters))
    for word in words:
        in_messages = Message.objects.filter(
            account_id=member.account_id, conversation=OuterRef("pk"), text__icontains=word
        )
        conversations = conversations.filter(
            Q(subject__icontains=word)
            | Q(contact__name__icontains=word)
            | Q(contact__email__icontains=word)
            | Exists(in_messages)
        )
    # Datetimes, not `_epoch`: SQLite's EXTRACT has no epoch.
    rows = list(
        conversations.order_by("-last_message_at", "-id").values_list("id", "last_message_at")[:CANDIDATES]
    )
    return {pk: _Candidate(at=at.timestamp()) for pk, at in rows}, len(rows) == CANDIDATES, None


def _fallback_messages(member: Membership, conversation_ids: list[int], words: list[str]) -> dict[int, int]:
    """Each conversation's newest message containing the first word: its snippet."""
    rows = (
        Message.objects.filter(
            account_id=member.account_id, conversation_id__in=conversation_ids, text__icontains=words[0]
        )
        .order_by("conversation_id", "-created_at", "-id")
        .values_list("conversation_id", "id")
    )
    chosen: dict[int, int] = {}
    for conversation_id, message_id in rows:
        chosen.setdefault(conversation_id, message_id)
    return chosen


# --- the page ------------------------------------------------------------------------------


def _hits(
    member: Membership,
    chosen: list[tuple[int, int | None]],
    words: list[str],
    inbox_ids: list[int],
    *,
    full_text: bool,
) -> list[Hit]:
    """The page's conversations with their contact, inbox and assignee, and their highlights."""
    if not chosen:
        return []
    ids = [pk for pk, _ in chosen]
    message_of = {pk: message_id for pk, message_id in chosen if message_id}
    if not full_text:
        message_of = _fallback_messages(member, ids, words)
    texts = dict(
        Message.objects.filter(account_id=member.account_id, pk__in=list(message_of.values()))
        .annotate(start=Left("text", SNIPPET_SOURCE))
        .values_list("id", "start")
    )
    rows = _page_conversations(member, ids, inbox_ids)
    hits = []
    for pk in ids:
        conversation = rows.get(pk)
        if conversation is None:  # gone since the candidates were read
            continue
        contact = conversation.contact
        snippet = texts.get(message_of.get(pk), "")
        hits.append(
            Hit(
                conversation,
                subject=highlight(conversation.subject, words),
                contact_name=highlight(contact.name, words),
                contact_email=highlight(contact.email, words),
                snippet=highlight(snippet, words, snippet=True) if snippet else escape(""),
            )
        )
    return hits


def _page_conversations(member: Membership, ids: list[int], inbox_ids: list[int]) -> dict[int, Conversation]:
    conversations: QuerySet[Conversation] = Conversation.objects.filter(
        account_id=member.account_id, inbox_id__in=inbox_ids, pk__in=ids
    ).select_related("contact", "inbox", "assignee__user")
    return {conversation.pk: conversation for conversation in conversations}


# --- stored vectors ------------------------------------------------------------------------


def forget_old_vectors(
    *,
    days: int = STORED_VECTOR_DAYS,
    batch: int = FORGET_BATCH,
    budget_seconds: float = FORGET_BUDGET_SECONDS,
) -> int:
    """Drop the stored search vector of messages older than `days`; how many. Scheduled hourly.

    They are still found, ranked and shown the same: their document is computed from the row
    (`MESSAGE_DOCUMENT`). Across accounts, in batches of `batch` rows, each its own statement, until
    none is left or `budget_seconds` have passed (a database upgraded with years of mail catches up
    over a few runs). PostgreSQL only (SQLite stores no vectors).
    """
    if connection.vendor != "postgresql":
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deadline = monotonic() + budget_seconds
    forgotten = 0
    with connection.cursor() as cursor:
        while True:
            # Oldest first on `message_search_vector_recent`, which holds only rows with a vector.
            cursor.execute(
                "UPDATE inboxes_message SET search_vector = NULL WHERE id IN ("
                " SELECT id FROM inboxes_message WHERE search_vector IS NOT NULL AND created_at < %s"
                " ORDER BY created_at LIMIT %s)",
                [cutoff, batch],
            )
            forgotten += cursor.rowcount
            if cursor.rowcount < batch or monotonic() >= deadline:
                return forgotten
