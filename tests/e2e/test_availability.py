"""The availability switch in the top bar, and availability on the members page (D9)."""

import re

from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot


def overlaps(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and (a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])
    )


def switch(page):
    return page.get_by_role("group", name="Your availability")


def test_an_agent_goes_away_without_a_reload_and_stays_away_after_one(page, demo):
    login(page, "ada@acme.example")
    available = switch(page).get_by_role("button", name="Available")
    away = switch(page).get_by_role("button", name="Away")
    expect(available).to_have_attribute("aria-pressed", "true")
    page.evaluate("window.__sameDocument = true")

    away.click()

    expect(away).to_have_attribute("aria-pressed", "true")
    expect(available).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#availability-status").filter(has_text="You are now away.")).to_have_count(1)
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    expect(away).to_be_focused()
    screenshot(page, "availability-away-desktop", full_page=False)

    page.reload()
    expect(switch(page).get_by_role("button", name="Away")).to_have_attribute("aria-pressed", "true")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "availability-away-mobile", full_page=False)
    page.set_viewport_size(DESKTOP)

    switch(page).get_by_role("button", name="Available").click()
    expect(switch(page).get_by_role("button", name="Available")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#availability-status").filter(has_text="You are now available.")).to_have_count(1)


def test_admins_see_who_is_away_and_since_when_on_the_members_page(page, demo):
    login(page, "ada@acme.example")
    switch(page).get_by_role("button", name="Away").click()
    expect(switch(page).get_by_role("button", name="Away")).to_have_attribute("aria-pressed", "true")
    page.context.clear_cookies()

    login(page, "admin@acme.example")
    page.goto(reverse("member_list", args=["acme"]))

    row = page.get_by_role("row").filter(has_text="Ada Lovelace")
    expect(row).to_contain_text(re.compile(r"Away\s*since \d"))
    expect(page.get_by_role("row").filter(has_text="Alex Admin")).to_contain_text("since joining")
    assert_accessible(page)
    screenshot(page, "members-availability-desktop")
    assert_fits_mobile(page)
    assert_accessible(page)
    screenshot(page, "members-availability-mobile")
    # At 390px the switch keeps its own room: no link of the main navigation runs under it.
    switch_box = page.locator("#availability-switch").bounding_box()
    for link in page.get_by_role("navigation", name="Main").get_by_role("link").all():
        assert not overlaps(link.bounding_box(), switch_box), link.text_content()
