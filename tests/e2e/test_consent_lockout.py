"""Issue 16 points 2 and 3 in the browser: answering an invitation, the lockout page."""

import re

from django.test import Client
from django_scopes import scope
from playwright.sync_api import expect

from inboxhub.models import Account, Membership
from inboxhub.services import add_member
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot


def invite_acme_admin_to_globex():
    globex = Account.objects.get(subdomain="globex")
    with scope(account=globex):
        owner = Membership.objects.get(account=globex, user__email="admin@globex.example")
        add_member(globex, email="admin@acme.example", full_name="Typed Name", password=None, by=owner)


def test_an_invited_person_sees_the_invitation_and_joins_by_accepting(page, demo):
    invite_acme_admin_to_globex()
    login(page, "admin@acme.example")
    page.goto("/accounts/")
    expect(page.get_by_role("table")).not_to_contain_text("Globex")
    page.get_by_role("link", name="See invitations").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Invitations")
    row = page.get_by_role("row", name=re.compile("Globex"))
    expect(row).to_contain_text("Agent")
    assert_accessible(page)
    screenshot(page, "invitations-desktop")
    assert_fits_mobile(page)
    page.set_viewport_size(DESKTOP)
    row.get_by_role("button", name="Accept the invitation to Globex").click()

    expect(page).to_have_url(re.compile(r"/a/globex/inbox/$"))
    expect(page.get_by_role("status")).to_contain_text("You joined Globex.")


def test_the_lockout_page_says_when_sign_in_opens_again(page, demo, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client().post("/login/", {"username": "ada@acme.example", "password": "wrong-password"})

    page.goto("/login/")
    page.get_by_label("Email").fill("ada@acme.example")
    page.get_by_label("Password").fill("inboxhub-demo")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Too many attempts")
    expect(page.locator("#lock-ends")).to_contain_text(re.compile(r"You can try again after \d\d:\d\d UTC"))
    assert_accessible(page)
    screenshot(page, "locked-out-desktop")
    assert_fits_mobile(page)


def test_the_members_page_lists_a_pending_invitation_with_the_typed_name_only(page, demo):
    invite_acme_admin_to_globex()
    login(page, "admin@globex.example")
    page.goto("/a/globex/settings/members/")

    row = page.get_by_role("row", name=re.compile("Typed Name"))
    expect(row).to_contain_text("admin@acme.example")
    expect(row).to_contain_text("Invited")
    expect(page.locator("main")).not_to_contain_text("Alex")  # the stored name of admin@acme.example
    assert_accessible(page)
    screenshot(page, "members-with-invitation-desktop")
    assert_fits_mobile(page)
    assert_accessible(page)
    page.set_viewport_size(DESKTOP)

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Withdraw the invitation to Typed Name").click()

    expect(page.get_by_role("status")).to_contain_text("The invitation to admin@acme.example was withdrawn.")
    expect(page.get_by_role("row", name=re.compile("Typed Name"))).to_have_count(0)
