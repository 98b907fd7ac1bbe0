"""The conversation list in Chromium (H1): unread in bold until opened, counts that follow, Assigned to me."""

import re
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from inboxes.models import Conversation, Inbox
from inboxes.services import assign_conversation
from inboxhub.models import Account, Membership
from inboxhub.workflows import close_conversation
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot
from tests.inboxes.helpers import listed_conversation


def acme():
    with scopes_disabled():
        account = Account.objects.get(subdomain="acme")
        return {
            "account": account,
            "inbox": account.inboxes.get(is_default=True),
            "sales": account.inboxes.get(name="Sales"),
            "ada": Membership.objects.select_related("user").get(
                account=account, user__email="ada@acme.example"
            ),
        }


def conversation(inbox: Inbox, subject: str, *, minutes_ago: int, text: str, **fields) -> Conversation:
    email, at = "grace@customer.example", timezone.now() - timedelta(minutes=minutes_ago)
    return listed_conversation(
        inbox, subject, email=email, name="Grace Hopper", text=text, at=at, sender=("", email), **fields
    )


def count_in(page, name: str) -> int:
    """The number beside a sidebar entry."""
    link = page.get_by_role("navigation", name="Inboxes").get_by_role("link", name=re.compile(f"^{name} "))
    return int(link.locator(".count").inner_text().split()[0])


def test_an_unread_conversation_is_bold_until_opened(page, demo):
    world = acme()
    fresh = conversation(
        world["inbox"], "Invoice missing", minutes_ago=180, text="I never got the invoice for November."
    )
    login(page, "ada@acme.example")
    page.goto(reverse("inboxes:inbox", args=["acme", world["inbox"].pk]))

    row = page.locator(f"#conversation-{fresh.pk}")
    expect(row).to_contain_text("Unread")  # the screen-reader text
    expect(row).to_contain_text("3 h")
    assert row.locator("td.subject a").evaluate("a => getComputedStyle(a).fontWeight") == "700"
    screenshot(page, "conversation-list-unread-desktop")

    row.get_by_role("link", name="Invoice missing").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoice missing")
    page.go_back()
    page.reload()

    row = page.locator(f"#conversation-{fresh.pk}")
    expect(row).not_to_contain_text("Unread")
    assert row.locator("td.subject a").evaluate("a => getComputedStyle(a).fontWeight") == "400"


def test_counts_follow_an_assignment_and_a_close(page, demo):
    world = acme()
    waiting = conversation(world["inbox"], "Login fails", minutes_ago=30, text="I cannot log in.")
    login(page, "ada@acme.example")
    url = reverse("inboxes:inbox", args=["acme", world["inbox"].pk])
    page.goto(url)
    mine, open_ = count_in(page, "Assigned to me"), count_in(page, world["inbox"].name)

    with scope(account=world["account"]):
        assign_conversation(waiting, world["ada"], by=world["ada"])
    # What the sidebar's poll does, without waiting the minute: the counts change in place.
    page.evaluate(
        "() => htmx.ajax('GET', document.querySelector('#inbox-nav').getAttribute('hx-get'),"
        " {target: '#inbox-nav', swap: 'outerHTML'})"
    )
    expect(page.locator("#inbox-nav .count").first).to_have_text(re.compile(f"^{mine + 1} "))
    assert (count_in(page, "Assigned to me"), count_in(page, world["inbox"].name)) == (mine + 1, open_)
    page.goto(url)
    expect(page.get_by_role("link", name=re.compile("^Assigned to me")).last).to_be_visible()

    with scope(account=world["account"]):
        close_conversation(waiting, by=world["ada"])
    page.goto(url)
    assert (count_in(page, "Assigned to me"), count_in(page, world["inbox"].name)) == (mine, open_ - 1)


def test_assigned_to_me_gathers_every_inbox_and_fits_a_phone(page, demo):
    world = acme()
    support = conversation(
        world["inbox"],
        "Refund for a broken kettle",
        minutes_ago=60 * 26,
        text="It broke after a day.",
        assignee=world["ada"],
    )
    sales = conversation(
        world["sales"],
        "Quote for 40 licences, with a rather long subject that needs room",
        minutes_ago=12,
        text="Could you send a quote for 40 licences and the volume discount " * 3,
        assignee=world["ada"],
    )
    login(page, "ada@acme.example")
    page.goto(reverse("inboxes:index", args=["acme"]))

    page.get_by_role("navigation", name="Inboxes").get_by_role(
        "link", name=re.compile("^Assigned to me")
    ).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Assigned to me")
    expect(page.locator(f"#conversation-{sales.pk}")).to_contain_text("Sales")
    expect(page.locator(f"#conversation-{support.pk}")).to_contain_text("1 d")
    # At 1280 px the whole table shows: nothing hides behind a sideways scroll.
    wrap = page.locator(".table-wrap")
    assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth"), "the list scrolls sideways at 1280 px"
    screenshot(page, "conversation-list-mine-desktop")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "conversation-list-mine-mobile")
    assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth"), "the list scrolls sideways at 390 px"
    expect(page.locator(f"#conversation-{sales.pk}")).to_contain_text("Quote for 40 licences")
    page.set_viewport_size(DESKTOP)


def test_the_inbox_list_passes_axe_and_fits_a_phone(page, demo):
    world = acme()
    for n in range(3):
        conversation(
            world["inbox"],
            f"Question {n} about the delivery of an order",
            minutes_ago=5 + n * 90,
            text="Where is my parcel? It was due yesterday and the tracking page says nothing.",
            assignee=world["ada"] if n == 1 else None,
        )
    login(page, "admin@acme.example")
    page.goto(reverse("inboxes:index", args=["acme"]))

    expect(page.locator(".conversation-list tbody tr").first).to_be_visible()
    wrap = page.locator(".table-wrap")
    assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth"), "the list scrolls sideways at 1280 px"
    expect(page.get_by_role("columnheader", name="Last message")).to_be_visible()
    screenshot(page, "conversation-list-desktop")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "conversation-list-mobile")
    page.set_viewport_size(DESKTOP)
