"""The account switcher and the user menu (A4)."""

import re

from django_scopes import scope
from playwright.sync_api import expect

from inboxhub.models import Account, Membership
from inboxhub.services import accept_invitation, add_member
from tests.e2e.conftest import assert_accessible, login, screenshot


def add_acme_admin_to_globex():
    globex = Account.objects.get(subdomain="globex")
    with scope(account=globex):
        owner = Membership.objects.get(account=globex, user__email="admin@globex.example")
        invitation = add_member(
            globex, email="admin@acme.example", full_name="Alex Admin", password=None, by=owner
        )
        # Someone with a login joins only by accepting (issue 16 point 2).
        accept_invitation(invitation, user=invitation.user)


def test_the_switcher_lists_both_accounts_and_switches_between_them(page, demo):
    add_acme_admin_to_globex()
    login(page, "admin@acme.example")
    expect(page).to_have_url(re.compile(r"/a/acme/inbox/$"))

    page.get_by_label(re.compile("Switch account")).click()
    menu = page.get_by_role("navigation", name="Your accounts")
    expect(menu.get_by_role("listitem")).to_have_text([re.compile("Acme"), re.compile("Globex")])
    expect(menu.get_by_role("link", name=re.compile("Acme"))).to_have_attribute("aria-current", "true")
    assert_accessible(page)
    screenshot(page, "account-switcher-open", full_page=False)
    menu.get_by_role("link", name=re.compile("Globex")).click()

    expect(page).to_have_url(re.compile(r"/a/globex/inbox/$"))
    expect(page.get_by_label(re.compile("Switch account"))).to_contain_text("Globex")
    expect(page.get_by_text("support@globex.inbox.localhost", exact=True)).to_be_visible()


def test_the_switcher_closes_with_escape_and_returns_focus(page, demo):
    login(page, "admin@acme.example")
    switcher = page.get_by_label(re.compile("Switch account"))
    switcher.click()
    expect(page.get_by_role("navigation", name="Your accounts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("navigation", name="Your accounts")).to_be_hidden()
    expect(switcher).to_be_focused()


def test_logging_out_from_the_user_menu_ends_the_session(page, demo):
    login(page, "ada@acme.example")
    page.get_by_label(re.compile("Your profile")).click()
    screenshot(page, "user-menu-open", full_page=False)
    page.get_by_role("button", name="Log out").click()

    expect(page).to_have_url(re.compile(r"/login/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    page.goto("/a/acme/inbox/")
    expect(page).to_have_url(re.compile(r"/login/\?next="))
