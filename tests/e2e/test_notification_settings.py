"""The Notifications page: a member turns off mail about conversations assigned while away (issue 17)."""

from django_scopes import scopes_disabled
from playwright.sync_api import expect

from inboxhub.models import Membership
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot

SETTING = "Email me when a conversation is assigned to me while I am away or not signed in"


def setting_of(email: str) -> bool:
    with scopes_disabled():
        return Membership.objects.get(account__subdomain="acme", user__email=email).notify_on_assignment


def test_an_agent_turns_assignment_mail_off_from_the_user_menu_and_it_stays_off(page, demo):
    login(page, "ada@acme.example")
    page.get_by_label("Your profile: Ada Lovelace").click()
    page.get_by_role("link", name="Notifications").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Notifications")
    checkbox = page.get_by_role("checkbox", name=SETTING)
    expect(checkbox).to_be_checked()
    assert_accessible(page)
    screenshot(page, "notifications-desktop", full_page=False)

    checkbox.uncheck()
    page.get_by_role("button", name="Save").click()

    expect(page.locator(".flash-stack")).to_contain_text("Saved: assignment emails are off.")
    expect(page.get_by_role("checkbox", name=SETTING)).not_to_be_checked()
    assert setting_of("ada@acme.example") is False
    assert setting_of("ben@acme.example") is True  # one member's setting, nobody else's

    page.reload()
    expect(page.get_by_role("checkbox", name=SETTING)).not_to_be_checked()
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "notifications-mobile")
    page.set_viewport_size(DESKTOP)


def test_the_setting_turns_back_on_at_390_px(page, demo):
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, "ben@acme.example")
    page.goto("/a/acme/notifications/")
    checkbox = page.get_by_role("checkbox", name=SETTING)
    checkbox.uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-stack")).to_contain_text("off")

    page.get_by_role("checkbox", name=SETTING).check()
    page.get_by_role("button", name="Save").click()

    expect(page.locator(".flash-stack")).to_contain_text("Saved: assignment emails are on.")
    expect(page.get_by_role("checkbox", name=SETTING)).to_be_checked()
    assert setting_of("ben@acme.example") is True
    assert_accessible(page)
    assert_fits_mobile(page)
