"""Live updates (H5): change counters that open lists and threads poll, and the tokens that read them.

Every writer that changes what a list or a thread shows calls `note_change` inside its transaction
(`activity.event` does it for every entry of a conversation's activity: assignment, automatic
assignment included, close and reopen, notes, replies, tickets, merges; `receiving.receive_message`
for new mail). After the commit, two counters go up: the account's, which its lists and sidebar
counts follow, and the conversation's, which its open thread follows.

With REDIS_URL the counters are Redis keys in its database (`inboxhub:live:<account>:<conversation>`,
0 for the account), shared by every web process and worker. Without Redis they are rows of
`LiveStamp`, so a mail taken in by `runsmtp` still reaches the lists a separate web process serves.

A page carries its counter's value as it was read before the page's own queries, and a signed token
naming the counter; `inboxes/live_views.py` answers a poll by comparing the two, without touching the
session or any other table, so an idle tab costs one signature check and one key read.
"""

import functools
import logging

import redis
from django.conf import settings
from django.core import signing
from django.db import connection, transaction

from inboxes.models import LiveStamp

logger = logging.getLogger(__name__)

ACCOUNT = 0  # the counter of an account's lists, next to its conversations' counters
KEY_PREFIX = "inboxhub:live"
# A conversation's counter outlives any tab that could still hold its value; a missing key reads 0,
# which the tab sees as a change: it refreshes once and goes on from there.
CONVERSATION_KEY_SECONDS = 7 * 24 * 3600
# A token lets its holder read a counter, nothing else; it is renewed by each refresh of the list or
# thread, which checks membership and access again, so a member removed stops learning even that.
TOKEN_SECONDS = 600
TOKEN_SALT = "inboxes.live"  # noqa: S105 - a signing salt, not a secret
REDIS_TIMEOUT_SECONDS = 1.0
# The open list asks its own URL again with this htmx target: the page's view answers the fragment.
LIST_TARGET = "inbox-list"

_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis | None:
    url = settings.REDIS_URL
    if not url:
        return None
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
    return client


def _key(account_id: int, conversation_id: int) -> str:
    return f"{KEY_PREFIX}:{account_id}:{conversation_id}"


def note_change(account_id: int, *conversation_ids: int) -> None:
    """Bump the account's counter and each conversation's once the current transaction commits (H5).

    Outside a transaction it bumps at once. The changes one transaction notes are bumped together,
    once (a new message's conversation and its ticket are one bump, not two). A failure to bump is
    logged, never raised: the change itself is committed, and the next change (or a reload) shows it.
    """
    ids = {int(pk) for pk in conversation_ids if pk}
    if connection.in_atomic_block:
        # Join a bump already waiting for this commit. Safe whatever savepoint it was noted in: a
        # waiting callback is dropped only when a savepoint still open rolls back, and every open
        # savepoint encloses this change too (a released one's callbacks wait for the outer commit).
        for _savepoints, callback, _robust in reversed(connection.run_on_commit):
            if isinstance(callback, _Bump) and callback.account_id == account_id and not callback.done:
                callback.conversation_ids |= ids
                return
    transaction.on_commit(_Bump(account_id, ids), robust=True)


class _Bump:
    """One transaction's bump of an account's counter and its conversations' (see note_change)."""

    def __init__(self, account_id: int, conversation_ids: set[int]) -> None:
        self.account_id = account_id
        self.conversation_ids = set(conversation_ids)
        self.done = False  # a test's captured callbacks stay listed after they ran: join none of those

    def __call__(self) -> None:
        self.done = True
        bump(self.account_id, *sorted(self.conversation_ids))


def bump(account_id: int, *conversation_ids: int) -> None:
    """Add one to the account's counter and to each conversation's, now."""
    client = _redis()
    if client is not None:
        keys = [_key(account_id, ACCOUNT), _log_key(account_id), _floor_key(account_id)]
        keys += [_key(account_id, pk) for pk in conversation_ids]
        _bump_script(client)(keys=keys, args=[CONVERSATION_KEY_SECONDS, LOG_SIZE, *conversation_ids])
        return
    table = connection.ops.quote_name(LiveStamp._meta.db_table)
    counters = (ACCOUNT, *conversation_ids)
    # One statement for every counter, atomic in the database: two writers at once both count.
    sql = (
        f"INSERT INTO {table} (account_id, conversation_id, value) "  # noqa: S608 - quoted table name
        f"VALUES {', '.join(['(%s, %s, 1)'] * len(counters))} "
        f"ON CONFLICT (account_id, conversation_id) DO UPDATE SET value = {table}.value + 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for pk in counters for value in (account_id, pk)])


# With Redis, each bump also notes its conversations in the account's change log, a sorted set
# scored by the account counter's new value: an open list then asks for the rows changed since the
# value it shows instead of all of them (`changed_since`). The log keeps the LOG_SIZE newest; the
# floor is the highest score it dropped, below which it can no longer answer.
LOG_SIZE = 1000
# More changed rows than this and the list refetches whole: as cheap, and simpler for the page.
MAX_CHANGED = 20
BUMP_SCRIPT = """
local value = redis.call('INCR', KEYS[1])
for i = 4, #KEYS do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[1])
  redis.call('ZADD', KEYS[2], value, ARGV[i - 1])
end
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[2])
if extra > 0 then
  local dropped = redis.call('ZRANGE', KEYS[2], extra - 1, extra - 1, 'WITHSCORES')
  redis.call('SET', KEYS[3], dropped[2], 'EX', ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return value
"""
_scripts: dict[int, object] = {}


def _log_key(account_id: int) -> str:
    return f"{KEY_PREFIX}:{account_id}:log"


def _floor_key(account_id: int) -> str:
    return f"{KEY_PREFIX}:{account_id}:logfloor"


def _bump_script(client: redis.Redis):
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(BUMP_SCRIPT)
    return script


def changed_since(account_id: int, since: int) -> list[int] | None:
    """The conversations changed after the account's counter had the value `since`, newest change
    last; None when that cannot be told (no Redis, a log that no longer reaches back so far, a
    counter that went back, too many changes): the list then refetches whole."""
    client = _redis()
    if client is None:
        return None
    pipe = client.pipeline(transaction=False)
    pipe.get(_key(account_id, ACCOUNT))
    pipe.get(_floor_key(account_id))
    pipe.zrangebyscore(_log_key(account_id), f"({since}", "+inf", start=0, num=MAX_CHANGED + 1)
    current, floor, members = pipe.execute()
    if current is None or int(current) < since or int(floor or 0) > since:
        return None
    changed = [int(member) for member in members]
    return changed if len(changed) <= MAX_CHANGED else None


def stamp(account_id: int, conversation_id: int = ACCOUNT) -> int:
    """The counter's value now; 0 for one never bumped."""
    client = _redis()
    if client is not None:
        value = client.get(_key(account_id, conversation_id))
        return int(value) if value is not None else 0
    # One indexed read in plain SQL: each open tab asks every second, and the ORM's query building
    # would cost more than the read. Scoped by the account id in the key, as the ORM would be.
    table = connection.ops.quote_name(LiveStamp._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT value FROM {table} WHERE account_id = %s AND conversation_id = %s",  # noqa: S608
            [account_id, conversation_id],
        )
        row = cursor.fetchone()
    return row[0] if row else 0


def token(subdomain: str, account_id: int, conversation_id: int = ACCOUNT) -> str:
    """A signed, expiring permission to read one counter of the account at `/a/<subdomain>/`."""
    return signing.dumps([subdomain, account_id, conversation_id], salt=TOKEN_SALT, compress=False)


def read_token(value: str, subdomain: str) -> tuple[int, int] | None:
    """The account and conversation a token names, or None when forged, expired or another account's."""
    try:
        named, account_id, conversation_id = signing.loads(value, salt=TOKEN_SALT, max_age=TOKEN_SECONDS)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if named != subdomain or not isinstance(account_id, int) or not isinstance(conversation_id, int):
        return None
    return account_id, conversation_id


class Live:
    """What a page needs to follow its counter: the value read before its queries, and the token."""

    def __init__(self, subdomain: str, account_id: int, conversation_id: int = ACCOUNT) -> None:
        self.stamp = stamp(account_id, conversation_id)
        self.token = token(subdomain, account_id, conversation_id)


def follow(view):
    """Read the page's counter before the view runs its queries: `request.live` (H5).

    A change that commits while the page renders then shows as a change at the first poll, never
    lost. Goes under `member_required`; a view with a `conversation_id` follows that conversation.
    """

    @functools.wraps(view)
    def wrapper(request, subdomain: str, *args, **kwargs):
        try:
            request.live = Live(subdomain, request.account.pk, kwargs.get("conversation_id", ACCOUNT))
        except redis.RedisError:
            logger.warning("live updates: the counter could not be read", exc_info=True)
            request.live = None  # the page works; it just does not follow changes
        return view(request, subdomain, *args, **kwargs)

    return wrapper


def list_template(request, page: str) -> str:
    """`page`, or the fragment of its rows, view tabs and sidebar when the open list refreshes (H5)."""
    htmx = getattr(request, "htmx", None)
    if not (htmx and htmx.target == LIST_TARGET):
        return page
    return (
        "inboxes/live_list_changes.html"
        if getattr(request, "live_changes", None) is not None
        else ("inboxes/live_list.html")
    )


def list_changes(request) -> list[int] | None:
    """For an open list's refresh of its first page (`changed_since` = the value it shows): the
    conversations changed since, whose rows alone it needs; else None, and it gets them all."""
    htmx = getattr(request, "htmx", None)
    since = request.GET.get("changed_since", "")
    if (
        not (htmx and htmx.target == LIST_TARGET and since.isdigit() and request.live)
        or "before" in request.GET
    ):
        return None
    try:
        changes = changed_since(request.account.pk, int(since))
    except redis.RedisError:
        return None
    request.live_changes = changes
    return changes
