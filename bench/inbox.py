"""Conversation list and search benchmark (issues 14, 17): p50/p95 and queries per request over HTTP.

    .venv/bin/python bench/inbox.py [--requests 100] [--reseed] [--open-share 0.25] [--only search_]

Seeds, once, the database `inboxhub_bench_inbox` (`--database`; reused while its seed matches the
options, `--reseed` starts over): one professional account with three inboxes, 20 paid agents,
5,000 contacts, 100,000 conversations and 300,000 messages written with COPY, plus one conversation
of 2,000 messages, and read states for half the conversations. Then starts gunicorn on the real app
(`inboxhub.wsgi`, settings `bench/inbox_server.py`: the product's plus a middleware that counts
queries), logs in as an agent over HTTP and requests each URL `--requests` times after a warm-up,
one request at a time. Prints one JSON line per URL, then a summary line. bench/README.md explains
the figures. Talks only to PostgreSQL on 127.0.0.1; no Redis (REDIS_URL unset).
"""

import argparse
import http.cookiejar
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import serving  # bench/serving.py (this script's folder is first on sys.path)
from serving import database_url, free_port, recreate_database

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

PYTHON = sys.executable
SUBDOMAIN = "benchlist"
AGENT_EMAIL = "agent00@benchlist.example"
AGENT_PASSWORD = "bench-list-password-1"  # noqa: S105  a throwaway login in a throwaway database
INBOXES = (("Support", 0.6), ("Sales", 0.3), ("Billing", 0.1))
AGENTS = 20
CONTACTS = 5_000
MESSAGES_PER_CONVERSATION = 3
LONG_THREAD = 2_000
TEXT = (
    "Hello, thank you for getting back to me. The order still shows as processing and the "
    "tracking link gives nothing. Could you check with the warehouse and tell me when it ships? "
)

# Words for the search URLs (issue 17): contacts share 500 names (a first name of ten, a last name
# of fifty); each conversation's messages name its order reference (a rare word) and a product (1 in 40).
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dmitri", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas") * 5
LAST_NAMES = tuple(f"Lastname{n:02d}" for n in range(50))
PRODUCTS = tuple(f"gadget{n:02d}" for n in range(40))


def contact_name(n: int) -> str:
    return f"{FIRST_NAMES[n % 50]} {LAST_NAMES[(n // 50) % 50]}"


def search_words(conversation_id: int) -> str:
    return f"Order reference ref{conversation_id:07d}, product {PRODUCTS[conversation_id % 40]}."


# --- the database --------------------------------------------------------------------


def django_env(dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "inboxhub.settings",
        "DATABASE_URL": dsn,
        "LOG_LEVEL": "WARNING",
        "LOCAL_RUN": "true",  # plain HTTP on loopback, and this checkout's key unless SECRET_KEY is set
        "PYTHONUNBUFFERED": "1",
    }
    return env


def seed_marker(args) -> str:
    return json.dumps(
        {"conversations": args.conversations, "open_share": args.open_share, "seed": args.seed, "v": 2},
        sort_keys=True,
    )


def seeded(postgres: str, name: str, marker: str) -> bool:
    """The database exists and holds the seed these options ask for."""
    with psycopg.connect(database_url(postgres, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
    with psycopg.connect(database_url(postgres, name), autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('bench_seed')").fetchone()[0]
        return bool(exists) and conn.execute("SELECT marker FROM bench_seed").fetchone() == (marker,)


def migrate(env: dict[str, str]) -> None:
    result = subprocess.run(
        [PYTHON, "manage.py", "migrate", "--verbosity", "0"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        sys.exit(f"manage.py migrate failed:\n{result.stdout}\n{result.stderr}")


# --- seeding -------------------------------------------------------------------------


def copy_rows(cur, model, rows, given: tuple[str, ...]) -> int:
    """COPY tuples of the `given` attnames into the model's table; every other column takes its default.

    The defaults come from the model, so a field added later needs no change here.
    """
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    missing = []
    defaults = {}
    for field in fields:
        if field.attname in given:
            continue
        default = field.get_default()  # "" for a text field without one
        if default is None and not field.null:
            missing.append(field.attname)
        defaults[field.attname] = json.dumps(default) if isinstance(default, (dict, list)) else default
    if missing:
        sys.exit(f"{model.__name__}: no value for {missing}")
    order = [f.attname for f in fields]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    position = {name: i for i, name in enumerate(given)}
    written = 0
    with cur.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([row[position[name]] if name in position else defaults[name] for name in order])
            written += 1
    return written


def seed(dsn: str, args, rng: random.Random) -> dict:
    """The account and its people with the ORM; conversations, messages and read states with COPY."""
    from django_scopes import scopes_disabled

    from inboxes.models import Contact, Conversation, Message, ReadState
    from inboxes.services import create_inbox
    from inboxhub.models import Account, Membership, User
    from inboxhub.provisioning import provision_account

    with scopes_disabled():
        owner = provision_account(
            subdomain=SUBDOMAIN,
            company_name="Bench List Ltd",
            full_name="Bench Owner",
            email="owner@benchlist.example",
            password=None,
            tier=Account.Tier.PROFESSIONAL,
        )
        account = owner.account
        inboxes = [account.inboxes.get(is_default=True)]
        inboxes[0].name = INBOXES[0][0]
        inboxes[0].save(update_fields=["name"])
        inboxes += [create_inbox(account, name=name) for name, _ in INBOXES[1:]]
        users = []
        for n in range(AGENTS):
            user = User(email=f"agent{n:02d}@benchlist.example", full_name=f"Agent {n:02d}")
            user.set_unusable_password()
            users.append(user)
        users[0].set_password(AGENT_PASSWORD)
        users = User.objects.bulk_create(users)
        members = Membership.objects.bulk_create(
            Membership(
                account=account,
                user=user,
                username=f"agent{n:02d}",
                seat=Membership.Seat.SERVICE_HUB,
                availability=Membership.Availability.AVAILABLE,
            )
            for n, user in enumerate(users)
        )
        contacts = Contact.objects.bulk_create(
            Contact(account=account, email=f"customer{n}@example.net", name=contact_name(n))
            for n in range(CONTACTS)
        )
    agent = members[0]
    weights = [share for _, share in INBOXES]
    now = datetime.now(UTC)
    started = time.monotonic()
    rows = []
    for n in range(args.conversations):
        # Spread over about a year, newest first by n.
        at = now - timedelta(seconds=315 * n)
        inbox = rng.choices(inboxes, weights)[0]
        if rng.random() < args.open_share:
            status = "open"
            assignee = None if rng.random() < 0.4 else rng.choice(members).pk
        else:
            status, assignee = "closed", rng.choice(members).pk
        rows.append(
            (account.pk, inbox.pk, rng.choice(contacts).pk, f"Order question {n}", status, assignee, at, at)
        )
    conversation_fields = (
        "account_id",
        "inbox_id",
        "contact_id",
        "subject",
        "status",
        "assignee_id",
        "created_at",
        "last_message_at",
    )
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        copy_rows(cur, Conversation, rows, conversation_fields)
        # The long thread: open, the agent's, its last message a minute ago (on the first page of every view).
        long_at = now - timedelta(minutes=1)
        copy_rows(
            cur,
            Conversation,
            [
                (
                    account.pk,
                    inboxes[0].pk,
                    contacts[0].pk,
                    "A very long thread",
                    "open",
                    agent.pk,
                    long_at,
                    long_at,
                )
            ],
            conversation_fields,
        )
        listed = cur.execute(
            "SELECT id, inbox_id, last_message_at FROM inboxes_conversation "
            "WHERE account_id = %s ORDER BY id",
            (account.pk,),
        ).fetchall()
        long_id = listed[-1][0]
        message_fields = (
            "account_id",
            "conversation_id",
            "inbox_id",
            "direction",
            "from_email",
            "subject",
            "text",
            "created_at",
            "threaded_by",
            "attributed_by",
        )

        def messages():
            for pk, inbox_id, last_at in listed:
                count = LONG_THREAD if pk == long_id else MESSAGES_PER_CONVERSATION
                for k in range(count):
                    direction = "incoming" if k % 2 == 0 else "outgoing"
                    created = last_at - timedelta(minutes=count - 1 - k)
                    threaded = "new_conversation" if k == 0 else "in_reply_to"
                    yield (
                        account.pk,
                        pk,
                        inbox_id,
                        direction,
                        "customer@example.net",
                        "Order question",
                        f"{TEXT}{search_words(pk)} (message {k + 1})",
                        created,
                        threaded,
                        "from",
                    )

        message_count = copy_rows(cur, Message, messages(), message_fields)
        # The agent has read about half the conversations at their last message.
        reads = (
            (account.pk, agent.pk, pk, last_at) for pk, _, last_at in listed if pk % 2 == 0 or pk == long_id
        )
        copy_rows(cur, ReadState, reads, ("account_id", "member_id", "conversation_id", "read_at"))
        conn.commit()
    copied_s = time.monotonic() - started
    return {"messages": message_count, "copy_s": round(copied_s, 1)}


def write_marker(dsn: str, marker: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_seed")
        conn.execute("CREATE TABLE bench_seed (marker text)")
        conn.execute("INSERT INTO bench_seed VALUES (%s)", (marker,))
        conn.execute("VACUUM ANALYZE")


def world_of(dsn: str) -> dict:
    """Ids and cursors the URLs need, read from the seeded database."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        account, agent = conn.execute(
            "SELECT a.id, m.id FROM inboxhub_account a JOIN inboxhub_membership m ON m.account_id = a.id "
            "JOIN inboxhub_user u ON u.id = m.user_id WHERE a.subdomain = %s AND u.email = %s",
            (SUBDOMAIN, AGENT_EMAIL),
        ).fetchone()
        inbox = conn.execute(
            "SELECT id FROM inboxes_inbox WHERE account_id = %s AND is_default", (account,)
        ).fetchone()[0]
        long_id = conn.execute(
            "SELECT id FROM inboxes_conversation WHERE account_id = %s AND subject = 'A very long thread'",
            (account,),
        ).fetchone()[0]
        views = {
            "unassigned": "status = 'open' AND assignee_id IS NULL AND inbox_id = %(inbox)s",
            "mine": "status = 'open' AND assignee_id = %(agent)s AND inbox_id = %(inbox)s",
            "open": "status = 'open' AND inbox_id = %(inbox)s",
            "closed": "status = 'closed' AND inbox_id = %(inbox)s",
            "across": "status = 'open' AND assignee_id = %(agent)s",
        }
        totals, cursors = {}, {}
        for view, where in views.items():
            params = {"account": account, "agent": agent, "inbox": inbox}
            base = f"FROM inboxes_conversation WHERE account_id = %(account)s AND {where}"  # noqa: S608
            totals[view] = conn.execute(f"SELECT count(*) {base}", params).fetchone()[0]  # noqa: S608
            # A deep page: past 90 % of the view (its rows, or 10,000 at most in).
            offset = min(int(totals[view] * 0.9), 10_000)
            found = conn.execute(
                f"SELECT last_message_at, id {base} ORDER BY last_message_at DESC, id DESC "  # noqa: S608
                "OFFSET %(offset)s LIMIT 1",
                params | {"offset": offset},
            ).fetchone()
            cursors[view] = (f"{found[0].isoformat()}_{found[1]}", offset) if found else (None, 0)
        # A conversation in the middle: its order reference is the search's rare word.
        some_conversation = conn.execute(
            "SELECT id FROM inboxes_conversation WHERE account_id = %s ORDER BY id OFFSET 4242 LIMIT 1",
            (account,),
        ).fetchone()[0]
        total = conn.execute("SELECT count(*) FROM inboxes_conversation").fetchone()[0]
        messages = conn.execute("SELECT count(*) FROM inboxes_message").fetchone()[0]
    return {
        "inbox": inbox,
        "long_thread": long_id,
        "totals": totals,
        "cursors": cursors,
        "conversations": total,
        "messages": messages,
        "some_conversation": some_conversation,
    }


# --- the server and the client -------------------------------------------------------


def start_gunicorn(env: dict[str, str], port: int, workers: int, log: Path) -> subprocess.Popen:
    server_env = env | {
        "DJANGO_SETTINGS_MODULE": "inbox_server",
        "PYTHONPATH": f"{BASE_DIR / 'bench'}:{BASE_DIR}",
        "AXES_ENABLED": "false",
    }
    return serving.start_gunicorn(server_env, port, log, "--workers", str(workers))


class Client:
    """A browser's session over plain HTTP: cookies kept, CSRF token sent with the login form."""

    def __init__(self, base: str):
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str):
        with self.opener.open(self.base + path, timeout=30) as response:  # noqa: S310  our own loopback server
            return response.status, dict(response.headers), response.read()

    def login(self, email: str, password: str) -> None:
        self.get("/login/")
        token = next(c.value for c in self.cookies if c.name == "csrftoken")
        data = urllib.parse.urlencode({"username": email, "password": password, "csrfmiddlewaretoken": token})
        request = urllib.request.Request(  # noqa: S310
            self.base + "/login/", data=data.encode(), headers={"Referer": self.base + "/login/"}
        )
        with self.opener.open(request, timeout=30) as response:  # noqa: S310
            if "/login/" in response.url:
                sys.exit("logging in failed")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def measure(client: Client, name: str, path: str, requests: int, warmup: int) -> dict:
    for _ in range(warmup):
        client.get(path)
    times, queries, db_ms, cpu_ms, sizes, statuses = [], set(), [], [], set(), set()
    for _ in range(requests):
        started = time.perf_counter()
        status, headers, body = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        statuses.add(status)
        queries.add(int(headers.get("X-Bench-Queries", "-1")))
        db_ms.append(float(headers.get("X-Bench-DB-ms", "0")))
        cpu_ms.append(float(headers.get("X-Bench-CPU-ms", "0")))
        sizes.add(len(body))
    rows = len(re.findall(rb'id="conversation-\d+"', body))
    return {
        "name": name,
        "url": path,
        "status": sorted(statuses),
        "p50_ms": round(percentile(times, 50), 1),
        "p95_ms": round(percentile(times, 95), 1),
        "max_ms": round(max(times), 1),
        "queries": sorted(queries),
        "db_p50_ms": round(percentile(db_ms, 50), 1),
        "app_cpu_p50_ms": round(percentile(cpu_ms, 50), 1),
        "rows": rows,
        "bytes": max(sizes),
        "requests": requests,
    }


def search_urls(world: dict) -> list[tuple[str, str]]:
    """The search page (issue 17) over the seed's words: in every message (`order`), in one conversation
    in forty (a product), in one conversation (an order reference), a contact's address and a last
    name (100 contacts), alone and with filters."""
    base = f"/a/{SUBDOMAIN}/inbox/search/?"
    rare = f"ref{world['some_conversation']:07d}"
    year_ago = (datetime.now(UTC) - timedelta(days=365)).date().isoformat()
    queries = [
        ("search_common", {"q": "order"}),
        ("search_common_newest", {"q": "order", "order": "newest"}),
        ("search_common_page_3", {"q": "order", "page": "3"}),
        ("search_common_open_unassigned", {"q": "order", "status": "open", "assignee": "none"}),
        ("search_phrase", {"q": '"tracking link"'}),
        ("search_product", {"q": "gadget07"}),
        ("search_product_closed_in_inbox", {"q": "gadget07", "status": "closed", "inbox": world["inbox"]}),
        ("search_rare", {"q": rare}),
        ("search_rare_since_a_year", {"q": rare, "since": year_ago}),
        ("search_contact_address", {"q": "customer123@example.net"}),
        ("search_contact_name", {"q": "Lastname07"}),
        ("search_no_match", {"q": "zyzzyva"}),
    ]
    return [(name, base + urllib.parse.urlencode(params)) for name, params in queries]


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the conversation list, counts and a long thread.")
    parser.add_argument("--requests", type=int, default=100, help="measured requests per URL")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests per URL first")
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--open-share", type=float, default=0.25, help="share of conversations open")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--reseed", action="store_true", help="drop and seed the database again")
    parser.add_argument("--database", default="inboxhub_bench_inbox")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--only", default="", help="measure only the URLs whose name starts with this")
    args = parser.parse_args()
    if urlsplit(args.postgres).hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("--postgres must be a server on this machine (127.0.0.1)")

    dsn = database_url(args.postgres, args.database)
    env = django_env(dsn)
    marker = seed_marker(args)
    summary = {"database": args.database, "reused": True, "cpus": os.cpu_count()}
    started = time.monotonic()
    if args.reseed or not seeded(args.postgres, args.database, marker):
        summary["reused"] = False
        recreate_database(args.postgres, args.database)
    migrate(env)  # a no-op on a current database; new migrations since the seed apply
    summary["migrate_s"] = round(time.monotonic() - started, 1)
    if not summary["reused"]:
        os.environ.clear()
        os.environ.update(env)
        import django

        django.setup()
        started = time.monotonic()
        summary |= seed(dsn, args, random.Random(args.seed))
        write_marker(dsn, marker)
        summary["seed_s"] = round(time.monotonic() - started, 1)
    world = world_of(dsn)

    log = BASE_DIR / "var" / "bench-inbox-gunicorn.log"
    log.parent.mkdir(exist_ok=True)
    port = free_port()
    server = start_gunicorn(env, port, args.workers, log)
    summary["loadavg_1m_before"] = loadavg()
    try:
        client = Client(f"http://127.0.0.1:{port}")
        client.login(AGENT_EMAIL, AGENT_PASSWORD)
        inbox_path = f"/a/{SUBDOMAIN}/inbox/{world['inbox']}/"
        mine_path = f"/a/{SUBDOMAIN}/inbox/mine/"
        urls = []
        for view in ("unassigned", "mine", "open", "closed"):
            urls.append((f"list_{view}_first", f"{inbox_path}?view={view}"))
            cursor, offset = world["cursors"][view]
            if cursor:
                urls.append(
                    (
                        f"list_{view}_deep_{offset}",
                        f"{inbox_path}?view={view}&before={urllib.parse.quote(cursor)}",
                    )
                )
        urls.append(("across_mine_first", mine_path))
        cursor, offset = world["cursors"]["across"]
        if cursor:
            urls.append((f"across_mine_deep_{offset}", f"{mine_path}?before={urllib.parse.quote(cursor)}"))
        urls.append(("counts", f"/a/{SUBDOMAIN}/inbox/counts/?current={world['inbox']}"))
        urls.append(("long_thread_first_page", f"/a/{SUBDOMAIN}/inbox/c/{world['long_thread']}/"))
        urls += search_urls(world)
        search_p95 = []
        for name, path in urls:
            if not name.startswith(args.only):
                continue
            figures = measure(client, name, path, args.requests, args.warmup)
            if name.startswith("search_"):
                search_p95.append(figures["p95_ms"])
            print(json.dumps(figures), flush=True)
        if search_p95:
            summary["search_p95_ms_worst"] = max(search_p95)
            summary["search_p95_ms_median"] = percentile(search_p95, 50)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    summary |= {
        "conversations": world["conversations"],
        "messages": world["messages"],
        "view_totals": world["totals"],
        "loadavg_1m_after": loadavg(),
        "gunicorn_workers": args.workers,
    }
    print(json.dumps({"summary": summary}), flush=True)


if __name__ == "__main__":
    main()
