"""Sign up through the form (A1): the new account lands on its default inbox."""

import re

from django.urls import reverse
from playwright.sync_api import expect

from inboxhub.models import User
from inboxhub.signup_mail import verification_token
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile


def fill_signup(page, *, company="Initech", subdomain="initech", name="Peter Gibbons", email=None):
    page.goto("/signup/")
    page.get_by_label("Company name").fill(company)
    page.get_by_label("Subdomain").fill(subdomain)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Work email").fill(email or f"peter@{subdomain}.example")
    page.get_by_label("Password").fill("tps-report-cover-sheet")
    page.get_by_role("button", name="Create account").click()


def test_signing_up_confirms_the_email_then_lands_on_the_default_inbox(page, transactional_db):
    fill_signup(page)

    expect(page).to_have_url(re.compile(r"/signup/sent/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    assert_accessible(page)
    assert_fits_mobile(page)
    page.set_viewport_size(DESKTOP)
    # The link the confirmation mail carries (issue 16 point 3).
    page.goto(
        reverse("signup_verify", args=[verification_token(User.objects.get(email="peter@initech.example"))])
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
    assert_accessible(page)
    page.get_by_role("button", name="Confirm my email address").click()

    expect(page).to_have_url(re.compile(r"/a/initech/inbox/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Inbox")
    expect(page.get_by_role("status")).to_contain_text("Welcome to InboxHub, Peter")
    address = "support@initech.inbox.localhost"
    expect(page.get_by_text(address, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=f"Copy the address {address}")).to_be_visible()
    assert_accessible(page)


def test_a_taken_subdomain_is_explained_next_to_the_field(page, demo):
    fill_signup(page, company="Acme Two", subdomain="acme", email="someone@elsewhere.example")

    expect(page).to_have_url(re.compile(r"/signup/$"))
    field = page.locator(".field", has=page.get_by_label("Subdomain"))
    expect(field.locator(".error")).to_have_text(re.compile(r"taken", re.IGNORECASE))
    expect(page.get_by_label("Subdomain")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Company name")).to_have_value("Acme Two")
    assert_accessible(page)
