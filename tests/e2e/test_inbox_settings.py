"""Inbox settings in Chromium: switch, rename, channel switch, access, the wizard (B1–B6, E1, A3, F2)."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot


def check_page(page, name: str) -> None:
    """One <h1>, axe, a desktop and a 390px screenshot, and the page fits 390px."""
    assert page.locator("h1").count() == 1
    assert page.locator("[style]").count() == 0
    assert_accessible(page)
    screenshot(page, f"{name}-desktop")
    assert_fits_mobile(page)
    screenshot(page, f"{name}-mobile")
    page.set_viewport_size(DESKTOP)


def open_inbox_settings(page) -> None:
    login(page, "admin@acme.example")
    page.goto("/a/acme/settings/")
    page.get_by_role("link", name="Inboxes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Inboxes")


def test_admin_switches_inbox_and_renames_it_through_the_dialog(page, demo):
    open_inbox_settings(page)
    selector = page.get_by_label("Current inbox")
    expect(selector).to_have_value(re.compile(r"\d+"))
    expect(page.get_by_role("button", name="Go")).to_be_hidden()
    check_page(page, "inbox-settings")

    with page.expect_navigation():
        selector.select_option(label="Sales")
    expect(page.get_by_label("Current inbox").locator("option:checked")).to_have_text("Sales")

    page.get_by_text("Actions").click()
    page.get_by_role("button", name="Rename inbox").click()
    dialog = page.get_by_role("dialog", name="Rename inbox")
    expect(dialog.get_by_label("Inbox name")).to_be_focused()
    dialog.get_by_label("Inbox name").fill("   ")
    dialog.get_by_role("button", name="Rename").click()
    expect(dialog).to_contain_text("Give the inbox a name.")
    dialog.get_by_label("Inbox name").fill("inbox")
    dialog.get_by_role("button", name="Rename").click()
    expect(dialog).to_contain_text("Another inbox already has this name.")
    screenshot(page, "inbox-settings-rename-error")
    assert_accessible(page)

    dialog.get_by_label("Inbox name").fill("Sales & Renewals")
    dialog.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("status")).to_contain_text("The inbox is now called “Sales & Renewals”.")

    page.reload()
    expect(page.get_by_label("Current inbox").locator("option:checked")).to_have_text("Sales & Renewals")


def test_admin_turns_the_channel_off_after_confirming_and_on_again(page, demo):
    open_inbox_settings(page)
    switch = page.get_by_role("switch", name="Fallback email address")
    expect(switch).to_have_attribute("aria-checked", "true")

    switch.click()
    confirm = page.get_by_role("dialog", name="Turn off the fallback email address?")
    expect(confirm).to_contain_text("is refused")
    screenshot(page, "inbox-settings-turn-off-confirm")
    assert_accessible(page)
    confirm.get_by_role("button", name="Keep it on").click()
    expect(confirm).to_be_hidden()
    expect(switch).to_have_attribute("aria-checked", "true")

    switch.click()
    page.get_by_role("dialog", name="Turn off the fallback email address?").get_by_role(
        "button", name="Turn off"
    ).click()
    switch = page.get_by_role("switch", name="Fallback email address")
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(switch).to_be_focused()
    expect(page.locator(".channel-row")).to_contain_text("Off: mail sent to this address is refused")

    page.reload()
    switch = page.get_by_role("switch", name="Fallback email address")
    expect(switch).to_have_attribute("aria-checked", "false")
    check_page(page, "inbox-settings-channel-off")

    switch.click()  # turning on needs no confirmation
    expect(page.get_by_role("switch", name="Fallback email address")).to_have_attribute(
        "aria-checked", "true"
    )
    page.reload()
    expect(page.get_by_role("switch", name="Fallback email address")).to_have_attribute(
        "aria-checked", "true"
    )


def test_admin_opens_the_channel_picker_and_sees_what_is_coming(page, demo):
    open_inbox_settings(page)

    page.get_by_role("button", name="Connect a channel").click()
    picker = page.get_by_role("dialog", name="Connect a channel")
    expect(picker).to_contain_text("Connected")
    expect(picker.get_by_text("Not available yet")).to_have_count(2)
    assert_accessible(page)
    screenshot(page, "inbox-settings-channel-picker")


def test_admin_restricts_access_to_a_team_and_it_is_kept(page, demo):
    open_inbox_settings(page)
    page.get_by_role("link", name="Access").click()
    expect(page.get_by_label("Available to everyone")).to_be_checked()
    expect(page.get_by_label("Filter users and teams")).to_be_hidden()

    page.get_by_label("Specific users and teams").check()
    page.get_by_label("Filter users and teams").fill("supp")
    expect(page.get_by_label("Ada Lovelace")).to_be_hidden()
    page.get_by_role("checkbox", name=re.compile(r"^Support\b")).check()
    page.get_by_label("Filter users and teams").fill("")
    expect(page.get_by_label("Ada Lovelace")).to_be_visible()
    screenshot(page, "inbox-access-picking")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Access to “Inbox” was saved.")

    page.reload()
    expect(page.get_by_label("Specific users and teams")).to_be_checked()
    expect(page.get_by_role("checkbox", name=re.compile(r"^Support\b"))).to_be_checked()
    expect(page.get_by_label("Ada Lovelace")).not_to_be_checked()
    expect(page.get_by_role("note")).to_contain_text("You are not on this list")
    check_page(page, "inbox-access")


def test_admin_creates_an_inbox_through_the_wizard(page, demo):
    open_inbox_settings(page)
    page.get_by_text("Actions").click()
    page.get_by_role("link", name="Create new inbox").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create a new inbox")
    check_page(page, "inbox-new-name")

    page.get_by_label("Inbox name").fill("Billing")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Specific users and teams").check()
    page.get_by_label("Ada Lovelace").check()
    check_page(page, "inbox-new-access")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Access: Ada Lovelace")).to_be_visible()
    check_page(page, "inbox-new-channel")

    page.get_by_role("button", name="Connect a channel later").click()
    expect(page.get_by_role("status")).to_contain_text("The inbox “Billing” was created.")
    expect(page.get_by_label("Current inbox").locator("option:checked")).to_have_text("Billing")
    expect(page.locator(".channel-row")).to_contain_text("@acme.")

    page.get_by_role("link", name="Access").click()
    expect(page.get_by_label("Ada Lovelace")).to_be_checked()


def test_a_free_account_sees_create_new_inbox_disabled_with_the_reason(page, demo):
    login(page, "admin@globex.example")
    page.goto("/a/globex/settings/inboxes/")
    page.get_by_text("Actions").click()

    expect(page.get_by_role("button", name="Create new inbox")).to_be_disabled()
    expect(page.get_by_text("Your Free plan includes one inbox.")).to_be_visible()
    check_page(page, "inbox-settings-free-tier")
