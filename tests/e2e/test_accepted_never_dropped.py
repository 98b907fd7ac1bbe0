"""A mail accepted just before its channel was turned off, in Chromium (issue 16, point 5).

The ingress has committed the mail (its 250 sent) and the workers are behind; the admin turns
the channel off through the dialog, a worker then gets to the row: the message waits on Failed
messages with its reason, and Retry brings it into the inbox once the channel is on again.
"""

from django.urls import reverse
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from inboxes.models import Conversation
from inboxhub.models import Account
from ingest.pipeline import process_inbound_message
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot
from tests.inboxes.helpers import address_of, default_inbox, raw_mail, spool

SUBJECT = "Parcel still missing"


def test_mail_accepted_before_the_channel_went_off_waits_on_failed_messages_and_retry_brings_it_in(
    page, demo
):
    with scopes_disabled():
        inbox = default_inbox(Account.objects.get(subdomain="acme"))
    to = address_of(inbox)
    row = spool(raw_mail(to=to, subject=SUBJECT, message_id="<parcel-1@customer.example>"), to)
    settings_page = reverse("inbox_settings:detail", args=["acme", inbox.pk])
    failed_page = reverse("inboxes:failed", args=["acme"])
    login(page, "admin@acme.example")
    page.goto(settings_page)
    switch = page.get_by_role("switch", name="Fallback email address")
    switch.click()
    confirm = page.get_by_role("dialog", name="Turn off the fallback email address?")
    expect(confirm).to_contain_text("waits under Failed messages")
    confirm.get_by_role("button", name="Turn off").click()
    expect(page.get_by_role("switch", name="Fallback email address")).to_have_attribute(
        "aria-checked", "false"
    )

    process_inbound_message(row.pk)  # a worker gets to it

    page.goto(failed_page)
    listed = page.locator(f"#inbound-{row.pk}")
    expect(listed).to_contain_text(SUBJECT)
    expect(listed).to_contain_text(f"The channel of {to} was turned off after this message was accepted")
    assert page.locator("h1").count() == 1
    assert_accessible(page)
    screenshot(page, "failed-channel-turned-off-desktop")
    assert_fits_mobile(page)
    screenshot(page, "failed-channel-turned-off-mobile")
    page.set_viewport_size(DESKTOP)

    page.goto(settings_page)
    page.get_by_role("switch", name="Fallback email address").click()  # on again
    expect(page.get_by_role("switch", name="Fallback email address")).to_have_attribute(
        "aria-checked", "true"
    )
    page.goto(failed_page)
    page.get_by_role("button", name=f"Retry message #{row.pk}").click()

    expect(page.get_by_text(f"Message #{row.pk} is queued for another try.")).to_be_visible()
    expect(page.locator(f"#inbound-{row.pk}")).to_have_count(0)
    with scopes_disabled():
        assert Conversation.objects.filter(inbox=inbox, subject=SUBJECT).count() == 1
