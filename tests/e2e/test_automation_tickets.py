"""The fallback address editor's Automation (D1–D5) and Tickets (C11) tabs, in Chromium."""

import re

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from inboxhub.models import Account, Membership
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot
from tests.factories import PASSWORD, MembershipFactory
from tickets.models import Pipeline, Stage


def acme() -> Account:
    with scopes_disabled():
        return Account.objects.get(subdomain="acme")


def tab_url(name: str) -> str:
    account = acme()
    with scopes_disabled():
        inbox = account.inboxes.get(is_default=True)
    return reverse(f"{name}:edit", args=[account.subdomain, inbox.pk])


@pytest.fixture
def onboarding(demo) -> Pipeline:
    account = acme()
    pipeline = Pipeline.objects.create(account=account, name="Onboarding")
    for position, name in enumerate(["Kick-off", "Setup", "Live"]):
        Stage.objects.create(account=account, pipeline=pipeline, name=name, position=position)
    return pipeline


def check_page(page, name: str) -> None:
    """One h1, no style= or inline script, axe clean, fits 390 px; screenshots at both widths."""
    assert page.locator("h1").count() == 1
    assert page.locator("[style]").count() == 0
    assert page.locator("script:not([src])").count() == 0
    screenshot(page, f"{name}-desktop")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, f"{name}-mobile")
    assert_accessible(page)
    page.set_viewport_size(DESKTOP)


def test_admin_turns_on_automatic_assignment_for_a_member_and_a_team_and_it_is_kept(page, demo):
    login(page, "admin@acme.example")
    page.goto(tab_url("automation"))
    expect(page.get_by_role("link", name="Automation")).to_have_attribute("aria-current", "page")
    switch = page.get_by_role("switch", name="Automatic assignment of conversations")
    # The demo assigns acme's default inbox among team Support: switch it off first, and see it kept.
    expect(switch).to_be_checked()
    switch.uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Automatic assignment for Inbox was saved.")
    page.reload()
    switch = page.get_by_role("switch", name="Automatic assignment of conversations")
    expect(switch).not_to_be_checked()
    expect(page.get_by_label("Assign only to available users")).to_be_checked()
    check_page(page, "automation-off")

    switch.check()
    page.get_by_label("Specific users and teams").check()
    page.get_by_role("checkbox", name=re.compile("^Ada Lovelace")).check()
    page.get_by_role("checkbox", name=re.compile("^Support")).check()
    page.get_by_label("Assign only to available users").uncheck()
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_contain_text("Automatic assignment for Inbox was saved.")
    page.reload()
    expect(page.get_by_role("switch", name="Automatic assignment of conversations")).to_be_checked()
    expect(page.get_by_label("Specific users and teams")).to_be_checked()
    expect(page.get_by_role("checkbox", name=re.compile("^Ada Lovelace"))).to_be_checked()
    expect(page.get_by_role("checkbox", name=re.compile("^Support"))).to_be_checked()
    expect(page.get_by_role("checkbox", name=re.compile("^Ben Carter"))).not_to_be_checked()
    expect(page.get_by_label("Assign only to available users")).not_to_be_checked()
    check_page(page, "automation-on")


def test_free_members_show_as_not_selectable_and_the_search_filters_the_list(page, demo):
    login(page, "admin@acme.example")
    page.goto(tab_url("automation"))

    fay = page.get_by_role("checkbox", name=re.compile("^Fay Free"))
    expect(fay).to_be_disabled()
    expect(fay).to_have_accessible_description("Free seat: can't be assigned automatically")
    expect(page.get_by_text("2 of 3 members can be assigned")).to_be_visible()

    page.get_by_label("Search members and teams").fill("ada")
    expect(page.get_by_role("checkbox", name=re.compile("^Ada Lovelace"))).to_be_visible()
    expect(page.get_by_role("checkbox", name=re.compile("^Ben Carter"))).to_be_hidden()
    page.get_by_label("Search members and teams").fill("nobody-by-this-name")
    expect(page.get_by_text("No member or team matches your search.")).to_be_visible()


def test_contact_owner_hides_the_picker_and_is_kept(page, demo):
    login(page, "admin@acme.example")
    page.goto(tab_url("automation"))

    page.get_by_role("switch", name="Automatic assignment of conversations").check()
    page.get_by_label("Contact owner").check()
    expect(page.get_by_label("Search members and teams")).to_be_hidden()
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_contain_text("Automatic assignment for Inbox was saved.")
    page.reload()
    expect(page.get_by_label("Contact owner")).to_be_checked()
    expect(page.get_by_role("switch", name="Automatic assignment of conversations")).to_be_checked()


def test_a_free_seat_admin_sees_the_automation_tab_read_only_with_the_reason(page, demo):
    MembershipFactory(
        account=acme(),
        user__email="frida@acme.example",
        user__full_name="Frida Free",
        username="frida",
        seat=Membership.Seat.FREE,
        permission=Membership.Permission.ACCOUNT_ADMIN,
    )
    login(page, "frida@acme.example", PASSWORD)
    page.goto(tab_url("automation"))

    expect(page.get_by_role("note")).to_contain_text("Only a member with a paid seat can turn on or change")
    expect(page.get_by_role("switch", name="Automatic assignment of conversations")).to_be_disabled()
    expect(page.get_by_role("checkbox", name=re.compile("^Ada Lovelace"))).to_be_disabled()
    expect(page.get_by_label("Assign only to available users")).to_be_disabled()
    expect(page.get_by_label("Contact owner")).to_be_disabled()
    expect(page.get_by_role("button", name="Save")).to_be_disabled()
    check_page(page, "automation-read-only")


def test_admin_sets_ticket_defaults_in_the_side_panel_and_they_are_kept(page, onboarding):
    login(page, "admin@acme.example")
    page.goto(tab_url("ticket_settings"))
    check_page(page, "tickets")

    page.get_by_role("switch", name="Treat incoming conversations as support tickets").check()
    page.get_by_role("button", name="Edit ticket").click()
    panel = page.get_by_role("dialog", name="Edit ticket")
    expect(panel).to_be_visible()
    expect(panel.get_by_label("Stage")).to_contain_text("Waiting on contact")
    panel.get_by_label("Pipeline").select_option(label="Onboarding")
    # htmx swaps in the new pipeline's stages.
    expect(panel.get_by_label("Stage").locator("option")).to_have_text(["Kick-off", "Setup", "Live"])
    panel.get_by_label("Stage").select_option(label="Setup")
    panel.get_by_label("Priority").select_option(label="Urgent")
    panel.get_by_label("A specific member").check()
    panel.get_by_label("Member who owns new tickets").select_option(label="Ada Lovelace")
    screenshot(page, "tickets-panel-desktop")
    assert_accessible(page)
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "tickets-panel-mobile", full_page=False)
    page.set_viewport_size(DESKTOP)
    panel.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_contain_text("Ticket settings for Inbox were saved.")
    page.reload()
    expect(page.get_by_role("switch", name="Treat incoming conversations as support tickets")).to_be_checked()
    summary = page.locator(".ticket-summary dl")
    expect(summary).to_contain_text("Onboarding")
    expect(summary).to_contain_text("Setup")
    expect(summary).to_contain_text("Urgent")
    expect(summary).to_contain_text("Ada Lovelace")
    page.get_by_role("button", name="Edit ticket").click()
    expect(panel.get_by_label("Pipeline")).to_have_value(str(onboarding.pk))
    expect(panel.get_by_label("Stage").locator("option:checked")).to_have_text("Setup")
    expect(panel.get_by_label("Priority")).to_have_value("urgent")
    expect(panel.get_by_label("A specific member")).to_be_checked()
    expect(panel.get_by_label("Member who owns new tickets").locator("option:checked")).to_have_text(
        "Ada Lovelace"
    )
    check_page(page, "tickets-saved")


def test_cancelling_the_panel_discards_its_changes(page, onboarding):
    login(page, "admin@acme.example")
    page.goto(tab_url("ticket_settings"))

    page.get_by_role("button", name="Edit ticket").click()
    panel = page.get_by_role("dialog", name="Edit ticket")
    panel.get_by_label("Pipeline").select_option(label="Onboarding")
    expect(panel.get_by_label("Stage").locator("option")).to_have_text(["Kick-off", "Setup", "Live"])
    panel.get_by_label("Priority").select_option(label="Low")
    panel.get_by_role("button", name="Cancel").click()
    expect(panel).to_be_hidden()
    page.get_by_role("switch", name="Treat incoming conversations as support tickets").check()
    page.locator(".form-actions").get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_contain_text("Ticket settings for Inbox were saved.")
    summary = page.locator(".ticket-summary dl")
    expect(summary).to_contain_text("Support pipeline")
    expect(summary).to_contain_text("New")
    expect(summary).to_contain_text("Medium")
