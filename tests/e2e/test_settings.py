"""Settings as the demo super admin: add a member through the dialog, create and rename a team (A4)."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import login


def test_admin_adds_a_member_with_a_password_and_puts_them_in_a_new_team_once_they_signed_in(
    page, demo, browser, live_server
):
    login(page, "admin@acme.example")
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Members")

    page.get_by_role("button", name="Add member").click()
    dialog = page.get_by_role("dialog", name="Add a member")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Name")).to_be_focused()
    dialog.get_by_label("Name").fill("Grace Hopper")
    dialog.get_by_label("Email").fill("grace@acme.example")
    dialog.get_by_label("Seat").select_option(label="Service Hub")
    dialog.get_by_label("Set a password now").check()
    dialog.get_by_label("Password", exact=True).fill("cobol-compiler-1959")
    dialog.get_by_role("button", name="Add member").click()

    expect(page.get_by_role("status")).to_contain_text("Grace Hopper was added to Acme.")
    row = page.get_by_role("row", name=re.compile("Grace Hopper"))
    expect(row).to_contain_text("grace@acme.example")
    expect(row).to_contain_text("Service Hub")
    # Invited until Grace signs in, as anyone with a login elsewhere would be (issue 16 point 2).
    expect(row).to_contain_text("Invited")
    page.get_by_role("link", name="Teams").click()
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("dialog", name="Create a team").get_by_label("Grace Hopper")).to_have_count(0)

    grace = browser.new_context(base_url=live_server.url)
    login(grace.new_page(), "grace@acme.example", "cobol-compiler-1959")
    grace.close()
    page.goto("/a/acme/settings/members/")
    expect(page.get_by_role("row", name=re.compile("Grace Hopper"))).not_to_contain_text("Invited")

    page.get_by_role("link", name="Teams").click()
    page.get_by_role("button", name="Create team").click()
    dialog = page.get_by_role("dialog", name="Create a team")
    dialog.get_by_label("Team name").fill("Billing")
    dialog.get_by_label("Grace Hopper").check()
    dialog.get_by_role("button", name="Create team").click()

    expect(page.get_by_role("status")).to_contain_text("Team “Billing” was created.")
    expect(page.get_by_role("row", name=re.compile("Billing"))).to_contain_text("Grace Hopper")

    page.get_by_role("link", name="Edit team Billing").click()
    page.get_by_label("Team name").fill("Billing & Refunds")
    page.get_by_role("button", name="Save team").click()

    expect(page.get_by_role("status")).to_contain_text("Team “Billing & Refunds” was saved.")
    expect(page.get_by_role("row", name=re.compile("Billing & Refunds"))).to_contain_text("Grace Hopper")
    expect(page.get_by_role("row", name=re.compile(r"^Billing\b(?! &)"))).to_have_count(0)


def test_the_add_member_dialog_closes_with_cancel_and_escape(page, demo):
    login(page, "admin@acme.example")
    page.goto("/a/acme/settings/members/")
    opener = page.get_by_role("button", name="Add member")
    dialog = page.get_by_role("dialog", name="Add a member")

    opener.click()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()

    opener.click()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
