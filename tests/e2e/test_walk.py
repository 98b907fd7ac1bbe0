"""A first walk through the demo (issue 14, point 9): every page the navigation reaches, with a week of mail.

The demo agent, then the demo admin, open their pages at 1280 and at 390 px: one <h1> in a <main>,
axe clean (no serious or critical violation), fitting 390 px, no console error or CSP violation, and
a screenshot of each width in test-artifacts/screenshots/walk-*.png, and none of our scripts' own names
in the page's global scope (classic scripts share it: a second `announce` would replace the first).
Every page is walked even when one fails, and the failure lists them all.
"""

import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django_scopes import scopes_disabled

from inboxes.models import Contact, Conversation
from inboxhub.models import Account, Membership
from tests.e2e.conftest import DESKTOP, MOBILE, assert_accessible, assert_fits_mobile, login, screenshot

# A conversation of each kind the demo seeds, by subject.
THREADS = {
    "reply-chain-ticket": "Order A-20931 still not shipped",
    "long-thread": "Importing four years of history from our old helpdesk",
    "attachment": "Invoice INV-2026-1187: wrong VAT number",
    "newsletter": "Fieldnote Weekly #48: peak season checklists that actually get used",
    "out-of-office": "Automatic reply: Your scanner service plan renews on 1 January",
    "closed": "Password reset link never arrives",
    "forward": "Quote for 12 handheld scanners",
    "unassigned": "Adding 15 seats for our Leeds depot",
}


# The names our scripts declare at their top level or one scope below it (where each wraps its body);
# htmx is the one global the pages mean to share.
OWN_NAMES = sorted(
    {
        name
        for script in (Path(__file__).parents[2] / "static" / "js").glob("*.js")
        if not script.name.endswith(".min.js")
        for name in re.findall(
            r"^ {0,2}(?:const|let|var|function|class|async function) ([A-Za-z_$][\w$]*)",
            script.read_text(),
            re.MULTILINE,
        )
    }
    - {"htmx"}
)


def leaked_names(page) -> list[str]:
    """Which of our scripts' names the page's global scope holds (no eval in the page: the CSP forbids it)."""
    kinds = page.evaluate("[" + ", ".join(f"typeof {name}" for name in OWN_NAMES) + "]")
    return [name for name, kind in zip(OWN_NAMES, kinds, strict=True) if kind != "undefined"]


@pytest.fixture
def demo_week(transactional_db):
    """The demo accounts with Acme's week of mail."""
    call_command("demo", stdout=io.StringIO())


def ids() -> dict:
    with scopes_disabled():
        acme = Account.objects.get(subdomain="acme")
        conversations = Conversation.objects.filter(account=acme)
        return {
            "inbox": acme.inboxes.get(is_default=True).pk,
            "sales": acme.inboxes.get(name="Sales").pk,
            "member": Membership.objects.get(account=acme, user__email="ada@acme.example").pk,
            "team": acme.teams.get(name="Support").pk,
            "contact": Contact.objects.get(account=acme, email="priya.raman@brightlane.example").pk,
            "threads": {kind: conversations.get(subject=subject).pk for kind, subject in THREADS.items()},
        }


def agent_pages(ids: dict) -> list[tuple[str, str, int]]:
    """(name, URL, status) of what an agent's navigation reaches, a thread of each seeded kind included."""
    acme = ["acme"]
    pages = [
        ("account-root", reverse("account_home", args=acme), 200),
        *[
            (f"inbox-{view}", reverse("inboxes:index", args=acme) + f"?view={view}", 200)
            for view in ("unassigned", "mine", "open", "closed")
        ],
        ("inbox-sales", reverse("inboxes:inbox", args=["acme", ids["sales"]]), 200),
        ("assigned-to-me-everywhere", reverse("inboxes:mine", args=acme), 200),
        *[
            (f"thread-{kind}", reverse("inboxes:thread", args=["acme", pk]), 200)
            for kind, pk in ids["threads"].items()
        ],
        ("contacts", reverse("contacts:list", args=acme), 200),
        ("contact", reverse("contacts:detail", args=["acme", ids["contact"]]), 200),
        ("tickets", reverse("tickets:board", args=acme), 200),
        ("accounts", reverse("accounts"), 200),
        ("not-found", "/a/acme/no-such-page/", 404),
    ]
    return pages


def admin_pages(ids: dict) -> list[tuple[str, str, int]]:
    """(name, URL, status) of the settings an admin's navigation reaches."""
    acme, inbox = ["acme"], ["acme", ids["inbox"]]
    return [
        ("settings", reverse("settings_home", args=acme), 200),
        ("members", reverse("member_list", args=acme), 200),
        ("member-edit", reverse("member_edit", args=["acme", ids["member"]]), 200),
        ("teams", reverse("team_list", args=acme), 200),
        ("team-edit", reverse("team_edit", args=["acme", ids["team"]]), 200),
        ("settings-inbox", reverse("inbox_settings:detail", args=inbox), 200),
        ("settings-configuration", reverse("fallback:configuration", args=inbox), 200),
        ("settings-automation", reverse("automation:edit", args=inbox), 200),
        ("settings-tickets", reverse("ticket_settings:edit", args=inbox), 200),
        ("failed-messages", reverse("inboxes:failed", args=acme), 200),
    ]


def walk(page, problems, who: str, pages: list[tuple[str, str, int]]) -> list[str]:
    """Open each page at both widths; what went wrong on each, by name."""
    failures = []
    for name, url, status in pages:
        # What the page fixture will report (a 403 or 404 document's own load error is not a problem).
        seen = len(problems.report().splitlines())
        try:
            page.set_viewport_size(DESKTOP)
            response = page.goto(url)
            assert response.status == status, f"answered {response.status}, not {status}"
            assert page.locator("main").count() == 1, "not exactly one <main>"
            assert page.locator("h1").count() == 1, "not exactly one <h1>"
            assert not leaked_names(page), f"global names from our scripts: {leaked_names(page)}"
            assert_accessible(page)
            screenshot(page, f"walk-{who}-{name}-desktop")
            page.set_viewport_size(MOBILE)
            assert_fits_mobile(page)
            assert_accessible(page)
            screenshot(page, f"walk-{who}-{name}-mobile")
        except (AssertionError, pytest.fail.Exception) as failure:
            failures.append(f"{who} {name} ({url}): {failure}")
        if len(problems.report().splitlines()) != seen:
            failures.append(f"{who} {name} ({url}): the browser reported problems (listed below)")
    return failures


def test_the_demo_agent_and_admin_walk_every_page_of_the_navigation(page, problems, demo_week):
    every = ids()
    forbidden = ("settings-forbidden", reverse("inbox_settings:index", args=["acme"]), 403)
    login(page, "ada@acme.example")
    failures = walk(page, problems, "agent", [*agent_pages(every), forbidden])

    page.context.clear_cookies()
    login(page, "admin@acme.example")
    inbox = [p for p in agent_pages(every) if p[0] in ("account-root", "thread-reply-chain-ticket")]
    failures += walk(page, problems, "admin", [*inbox, *admin_pages(every)])

    assert not failures, "\n".join(failures)
