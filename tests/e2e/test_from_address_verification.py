"""Custom from-address verification in Chromium, as the owner of the mailbox lives it (C4).

The admin asks for a link; the real mail reaches a capture smarthost; the link is opened in a
fresh browser with no session, confirmed, and names the account and inbox; the admin's settings
page then shows the address verified.
"""

import re

import pytest
from playwright.sync_api import expect

from inboxes.models import Inbox
from inboxhub.celery import app as celery_app
from tests.dnsserver import dns_server  # noqa: F401
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot
from tests.smarthost import smarthost

ADDRESS = "help@acme-corp.example"


@pytest.fixture
def url(demo) -> str:
    inbox = Inbox.objects.get(account__subdomain="acme", is_default=True)
    return f"/a/acme/settings/inboxes/{inbox.pk}/fallback/"


@pytest.fixture
def dns(dns_server, settings):  # noqa: F811
    dns_server.add("acme-corp.example", "MX", "10 mx.acme-corp.example.")
    settings.DNS_NAMESERVERS = [dns_server.address]
    return dns_server


@pytest.fixture
def outbox(settings, monkeypatch):
    # The verification mail is delivered by the task in the server's thread, as without REDIS_URL.
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    with smarthost(settings) as handler:
        yield handler


@pytest.fixture
def admin_page(browser, live_server):
    """The admin's own browser, apart from `page`, which stays a stranger's with no session."""
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP, reduced_motion="reduce")
    context.set_default_timeout(5_000)
    yield context.new_page()
    context.close()


def test_the_mailbox_owner_verifies_from_a_browser_with_no_session(page, admin_page, url, dns, outbox):
    login(admin_page, "admin@acme.example")
    admin_page.goto(url)
    admin_page.get_by_label("Customize from address").check()
    admin_page.get_by_label("Custom from address").fill(ADDRESS)
    admin_page.get_by_role("button", name="Verify address").click()
    on_its_way = f"A verification link is on its way to {ADDRESS}"
    expect(admin_page.get_by_role("status")).to_contain_text(on_its_way)
    assert outbox.received.wait(10), "the verification mail never reached the smarthost"
    rcpt_tos, mail = outbox.messages[-1]
    assert rcpt_tos == [ADDRESS]
    link = re.search(r"https?://\S+", mail.get_content()).group(0)

    page.goto(link)  # a fresh context: no cookie, no login
    expect(page.get_by_role("heading", level=1)).to_have_text("Verify from address")
    expect(page.locator("main")).to_contain_text(
        f"Acme wants to send email from its InboxHub inbox Inbox as {ADDRESS}."
    )
    assert_accessible(page)
    screenshot(page, "from-address-verify-confirm-desktop")
    page.get_by_role("button", name=f"Verify {ADDRESS}").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("From address verified")
    expect(page.get_by_role("status")).to_have_text(f"{ADDRESS} is verified for the inbox Inbox of Acme.")
    assert "/login/" not in page.url
    assert_accessible(page)
    screenshot(page, "from-address-verified-desktop")
    assert_fits_mobile(page)
    screenshot(page, "from-address-verified-mobile")

    page.goto(link)  # the second click
    expect(page.get_by_role("heading", level=1)).to_have_text("Already verified")

    admin_page.reload()
    expect(admin_page.get_by_text("Verified", exact=True)).to_be_visible()
    expect(admin_page.get_by_test_id("preview")).to_contain_text(f"<{ADDRESS}>")
