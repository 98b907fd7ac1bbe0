"""Every page meets the standard: landmarks, one h1, axe, no console errors, fits 390px, CSP."""

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from inboxhub.models import Account, Membership
from tests.e2e.conftest import DESKTOP, MOBILE, assert_accessible, assert_fits_mobile, login, screenshot


def acme_ids() -> dict:
    with scopes_disabled():
        acme = Account.objects.get(subdomain="acme")
        return {
            "member": Membership.objects.get(account=acme, user__email="ada@acme.example").pk,
            "team": acme.teams.get(name="Support").pk,
            "inbox": acme.inboxes.get(name="Sales").pk,
        }


# (name, who logs in or None, URL from the demo's ids)
PAGES = [
    ("login", None, lambda ids: reverse("login")),
    ("signup", None, lambda ids: reverse("signup")),
    ("password-reset", None, lambda ids: reverse("password_reset")),
    ("password-reset-sent", None, lambda ids: reverse("password_reset_done")),
    ("password-reset-bad-link", None, lambda ids: reverse("password_reset_confirm", args=["MQ", "x-y"])),
    ("invite-bad-link", None, lambda ids: reverse("invite_accept", args=["MQ", "x-y"])),
    ("accounts", "admin@acme.example", lambda ids: reverse("accounts")),
    ("inbox", "admin@acme.example", lambda ids: reverse("inboxes:index", args=["acme"])),
    ("inbox-sales", "ada@acme.example", lambda ids: reverse("inboxes:inbox", args=["acme", ids["inbox"]])),
    ("contacts", "admin@acme.example", lambda ids: reverse("contacts:list", args=["acme"])),
    ("members", "admin@acme.example", lambda ids: reverse("member_list", args=["acme"])),
    ("member-edit", "admin@acme.example", lambda ids: reverse("member_edit", args=["acme", ids["member"]])),
    ("teams", "admin@acme.example", lambda ids: reverse("team_list", args=["acme"])),
    ("teams-empty", "admin@globex.example", lambda ids: reverse("team_list", args=["globex"])),
    ("team-edit", "admin@acme.example", lambda ids: reverse("team_edit", args=["acme", ids["team"]])),
    ("settings-account-admin", "lead@acme.example", lambda ids: reverse("settings_home", args=["acme"])),
    ("password-change", "ada@acme.example", lambda ids: reverse("password_change")),
    ("password-changed", "ada@acme.example", lambda ids: reverse("password_change_done")),
]


@pytest.mark.parametrize(("name", "who", "url"), PAGES, ids=[p[0] for p in PAGES])
def test_page_meets_the_standard(page, demo, name, who, url):
    if who:
        login(page, who)
    response = page.goto(url(acme_ids()))

    assert response.status == 200, f"{name} answered {response.status}"
    assert "script-src 'self'" in response.headers.get("content-security-policy", "")
    assert page.locator("main").count() == 1
    assert page.locator("h1").count() == 1, "exactly one <h1>"
    assert page.locator("[style]").count() == 0, "style= attributes are blocked by the CSP"
    assert page.locator("script:not([src])").count() == 0, "inline script is blocked by the CSP"
    # Taken after the [style] check: Playwright's screenshot sets style="" on inputs to hide the caret.
    screenshot(page, f"{name}-desktop")
    assert_accessible(page)

    page.set_viewport_size(MOBILE)
    screenshot(page, f"{name}-mobile")
    assert_fits_mobile(page)
    assert_accessible(page)
    page.set_viewport_size(DESKTOP)


def test_the_add_member_dialog_meets_the_standard_with_errors_shown(page, demo):
    login(page, "admin@acme.example")
    page.goto(reverse("member_list", args=["acme"]))
    page.get_by_role("button", name="Add member").click()
    dialog = page.get_by_role("dialog", name="Add a member")
    dialog.get_by_role("button", name="Add member").click()

    dialog = page.get_by_role("dialog", name="Add a member")
    assert dialog.is_visible()
    assert dialog.locator(".error").count() >= 2
    assert_accessible(page)
    screenshot(page, "add-member-errors-desktop", full_page=False)
    assert_fits_mobile(page)
    screenshot(page, "add-member-errors-mobile", full_page=False)
