"""Fallback address Configuration tab in Chromium: settings kept, live preview, Copy, hostile signature."""

import pytest
from playwright.sync_api import expect

from inboxes.models import Inbox
from tests.dnsserver import dns_server  # noqa: F401
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot

HOSTILE_SIGNATURE = (
    "<p>Support team</p>"
    "<img src=x onerror=alert(1)>"
    "<script>alert(2)</script>"
    '<a href="javascript:alert(3)">click</a>'
    "<svg><script>alert(4)</script></svg>"
    '<div hx-get="/a/acme/settings/" hx-trigger="load">hx</div>'
    "<details open ontoggle=alert(5)>d</details>"
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(6)></style>"
    '<noscript><p title="</noscript><img src=x onerror=alert(7)>">'
    '<iframe src="javascript:alert(8)"></iframe>'
    '<p style="background:url(javascript:alert(9))">styled</p>'
)


@pytest.fixture
def url(demo) -> str:
    inbox = Inbox.objects.get(account__subdomain="acme", is_default=True)
    return f"/a/acme/settings/inboxes/{inbox.pk}/fallback/"


@pytest.fixture
def dns(dns_server, settings):  # noqa: F811
    dns_server.add("acme-corp.example", "MX", "10 mx.acme-corp.example.")
    dns_server.add_txt("acme-corp.example", "v=spf1 include:_spf.google.com -all")
    dns_server.add_txt("_dmarc.acme-corp.example", "v=DMARC1; p=reject")
    settings.DNS_NAMESERVERS = [dns_server.address]
    return dns_server


def test_each_setting_is_saved_and_kept_after_a_reload(page, url, dns):
    login(page, "admin@acme.example")
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Fallback email address")
    expect(page.get_by_role("link", name="Configuration")).to_have_attribute("aria-current", "page")

    page.get_by_role("switch", name="Use the InboxHub address to send messages").uncheck()
    page.get_by_role("combobox", name="From name").select_option("company")
    page.get_by_label("Company name").fill("Acme Care")
    page.get_by_label("Customize from address").check()
    page.get_by_label("Custom from address").fill("help@acme-corp.example")
    # Leaving the field checks the domain and swaps the deliverability box in above the signature:
    # let that land first, so the page does not move under the next click (a CI flake).
    page.get_by_label("Custom from address").press("Tab")
    expect(page.get_by_role("alert")).to_contain_text("may be rejected")
    page.get_by_text("Add team signature").click()
    editor = page.get_by_role("textbox", name="Team signature")
    editor.click()
    page.keyboard.type("Support")
    page.keyboard.press("Control+A")
    page.get_by_role("button", name="Bold").click()
    page.get_by_label("Font face").select_option("Georgia")
    page.keyboard.press("End")
    page.keyboard.type(" by ")
    page.get_by_text("Insert token").click()
    page.get_by_role("button", name="Full name").click()
    page.get_by_role("switch", name="Select original sender of forwarded emails").uncheck()
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_role("status")).to_contain_text("Fallback address settings saved.")
    page.reload()
    expect(page.get_by_role("switch", name="Use the InboxHub address to send messages")).not_to_be_checked()
    expect(page.get_by_role("combobox", name="From name")).to_have_value("company")
    expect(page.get_by_label("Company name")).to_have_value("Acme Care")
    expect(page.get_by_label("Customize from address")).to_be_checked()
    expect(page.get_by_label("Custom from address")).to_have_value("help@acme-corp.example")
    expect(page.get_by_text("Pending verification", exact=True)).to_be_visible()
    expect(page.get_by_text("v=DMARC1; p=reject")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("may be rejected")
    expect(page.get_by_role("switch", name="Select original sender of forwarded emails")).not_to_be_checked()
    editor = page.get_by_role("textbox", name="Team signature")
    expect(editor.locator("b")).to_contain_text("Support")
    expect(editor.locator('font[face="Georgia"]')).to_have_count(1)
    expect(editor).to_contain_text("by {{full_name}}")
    preview = page.get_by_test_id("preview")
    expect(preview.locator("[data-preview-name]")).to_have_text("Acme Care")
    expect(preview).to_contain_text("by Alex Admin")
    expect(preview).to_contain_text("Sending from this address is off")
    screenshot(page, "fallback-configuration-desktop")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "fallback-configuration-mobile")

    page.set_viewport_size(DESKTOP)
    page.get_by_role("switch", name="Use the InboxHub address to send messages").check()
    page.get_by_role("switch", name="Select original sender of forwarded emails").check()
    page.get_by_label("Use default").check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Fallback address settings saved.")
    page.reload()
    expect(page.get_by_role("switch", name="Use the InboxHub address to send messages")).to_be_checked()
    expect(page.get_by_role("switch", name="Select original sender of forwarded emails")).to_be_checked()
    expect(page.get_by_label("Use default")).to_be_checked()


def test_the_preview_follows_the_form_as_you_type(page, url):
    login(page, "admin@acme.example")
    page.goto(url)
    name = page.get_by_test_id("preview").locator("[data-preview-name]")
    expect(name).to_have_text("Alex Admin at Acme")

    page.get_by_label("Company name").fill("Acme Help Desk")
    expect(name).to_have_text("Alex Admin at Acme Help Desk")

    page.get_by_role("combobox", name="From name").select_option("company")
    expect(name).to_have_text("Acme Help Desk")

    page.get_by_text("Add team signature").click()
    page.get_by_role("textbox", name="Team signature").click()
    page.keyboard.type("Cheers, ")
    page.get_by_text("Insert token").click()
    page.get_by_role("button", name="First name").click()
    expect(page.get_by_test_id("preview")).to_contain_text("Cheers, Alex")


def test_the_copy_button_copies_the_forwarding_address(page, context, url):
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    login(page, "admin@acme.example")
    page.goto(url)
    address = page.get_by_role("textbox", name="Forwarding address").input_value()
    assert address.endswith("@acme.inbox.localhost")

    page.get_by_role("button", name="Copy").click()

    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == address


def test_a_hostile_signature_runs_no_script_in_the_preview_or_after_saving(page, url):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    login(page, "admin@acme.example")
    page.goto(url)
    page.get_by_text("Add team signature").click()
    page.get_by_role("button", name="HTML").click()

    page.get_by_label("Signature HTML").fill(HOSTILE_SIGNATURE)
    preview = page.get_by_test_id("preview")
    expect(preview).to_contain_text("Removed when you save")
    expect(preview).to_contain_text("Support team")
    # Saved from HTML mode, the page lists what the sanitizer removed; after the reload the rich-text
    # editor (the default once a signature exists) renders the stored, sanitized signature.
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Removed from the signature")
    page.reload()
    page.wait_for_timeout(300)

    assert dialogs == []
    assert not [u for u in requests if "/settings/\n" in u or u.endswith("/a/acme/settings/")]
    assert page.locator(".email-preview-signature script, .email-preview-signature [onerror]").count() == 0
    expect(page.get_by_role("textbox", name="Team signature")).to_contain_text("Support team")


def test_an_expired_or_forged_verification_link_shows_a_clear_page(page, url):
    page.goto("/verify/from-address/?token=forged")  # no login: the link is for the mailbox's owner

    expect(page.get_by_role("heading", level=1)).to_have_text("This link cannot verify the address")
    expect(page.get_by_role("alert")).to_contain_text("This verification link is not valid.")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "from-address-verify-refused-mobile")


def test_safe_inline_styles_show_in_the_editor_and_preview_without_breaking_the_csp(page, url):
    login(page, "admin@acme.example")
    page.goto(url)
    page.get_by_text("Add team signature").click()
    page.get_by_role("button", name="HTML").click()
    page.get_by_label("Signature HTML").fill('<p style="color: rgb(0, 128, 0)">Green</p>')
    page.get_by_role("button", name="Rich text").click()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Fallback address settings saved.")
    page.reload()

    editor_text = page.get_by_role("textbox", name="Team signature").get_by_text("Green")
    preview_text = page.get_by_test_id("preview").get_by_text("Green")
    expect(editor_text).to_have_css("color", "rgb(0, 128, 0)")
    expect(preview_text).to_have_css("color", "rgb(0, 128, 0)")
