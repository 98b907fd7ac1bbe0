"""The 403 and 404 pages in Chromium: the app's look, the reason in words, accessible, fit 390 px."""

from playwright.sync_api import expect

from tests.e2e.conftest import assert_accessible, assert_fits_mobile, login, screenshot


def test_a_free_agent_opening_inbox_settings_reads_why_not(page, demo):
    login(page, "fay@acme.example")
    response = page.goto("/a/acme/settings/inboxes/")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("You can't do this here")
    expect(page.get_by_role("main")).to_contain_text(
        "Only super admins and account admins can open inbox settings."
    )
    screenshot(page, "error-403")
    assert_accessible(page)
    assert_fits_mobile(page)


def test_a_wrong_address_answers_with_the_apps_404(page, demo):
    login(page, "fay@acme.example")
    response = page.goto("/a/globex/inbox/")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    expect(page.get_by_role("link", name="Go to InboxHub")).to_be_visible()
    screenshot(page, "error-404")
    assert_accessible(page)
    assert_fits_mobile(page)
