"""Working a conversation in Chromium: a note added in place, a reply with a file through a capture
smarthost, assign and close, the activity listing all of it; a free seat sees refused controls with the
reason (H4, H3, B7).
"""

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from channels_conn.models import FallbackAddress
from inboxes.models import Conversation
from inboxhub.celery import app as celery_app
from inboxhub.models import Membership
from ingest.pipeline import process_inbound_message
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot
from tests.factories import PASSWORD, MembershipFactory, make_account
from tests.inboxes.helpers import raw_mail, spool
from tests.smarthost import smarthost

INVOICE = b"%PDF-1.4\n% a small invoice\n"


@pytest.fixture(autouse=True)
def eager(monkeypatch, settings):
    """Tasks run in the server's thread (no REDIS_URL); sender checks trust loopback."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    settings.TRUSTED_NETWORKS = []


@pytest.fixture
def outbox(settings):
    with smarthost(settings) as handler:
        yield handler


def a_conversation(account, assignee=None) -> Conversation:
    with scopes_disabled():
        to = FallbackAddress.objects.get(account=account).address
        process_inbound_message(spool(raw_mail(to=to, subject="Broken widget"), to).pk)
        conversation = Conversation.objects.get(account=account)
        if assignee is not None:
            Conversation.objects.filter(pk=conversation.pk).update(assignee=assignee)
        return conversation


def test_an_agent_notes_replies_with_a_file_takes_and_closes_and_sees_it_all_listed(page, outbox, tmp_path):
    admin = make_account("alpha", company_name="Alpha", full_name="Alice Admin", email="alice@alpha.example")
    conversation = a_conversation(admin.account)
    login(page, "alice@alpha.example", PASSWORD)
    page.goto(reverse("inboxes:thread", args=["alpha", conversation.pk]))

    page.get_by_label("Note", exact=True).fill("Checked the warehouse: <b>two</b> left.")
    page.get_by_role("button", name="Add note").click()
    note = page.locator("ol.thread article.note")
    expect(note).to_contain_text("Internal note — not sent")
    expect(note).to_contain_text("Checked the warehouse: <b>two</b> left.")
    expect(page.get_by_label("Note", exact=True)).to_have_value("")
    activity = page.get_by_role("region", name="Activity")
    expect(activity).to_contain_text("Alice Admin added an internal note")  # in place, no reload
    assert outbox.attempts == 0

    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(INVOICE)
    page.get_by_label("Reply", exact=True).fill("Your replacement is on its way; the invoice is attached.")
    page.get_by_label("Attachments").set_input_files(str(invoice))
    page.get_by_role("button", name="Send").click()
    assert outbox.received.wait(10), "the reply never reached the smarthost"
    [(_, mail)] = outbox.messages
    [part] = mail.iter_attachments()
    assert (part.get_filename(), part.get_content_type(), part.get_content()) == (
        "invoice.pdf",
        "application/pdf",
        INVOICE,
    )
    expect(page.locator("ol.thread").get_by_role("link", name="invoice.pdf")).to_be_visible()
    expect(activity).to_contain_text("Alice Admin sent a reply")

    page.get_by_role("button", name="Assign to me").click()
    expect(page.get_by_role("region", name="Assignment")).to_contain_text("Assigned to Alice Admin")
    page.get_by_role("button", name="Close conversation").click()
    expect(page.get_by_role("button", name="Reopen conversation")).to_be_visible()

    for text in ("Alice Admin closed it", "Alice Admin took it", "Alice Admin sent a reply"):
        expect(activity).to_contain_text(text)
    expect(activity).to_contain_text("Alice Admin added an internal note")
    screenshot(page, "thread-actions-desktop")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "thread-actions-mobile")


def test_a_free_seat_sees_the_controls_it_may_not_use_disabled_with_the_reason(page):
    admin = make_account("alpha", company_name="Alpha", full_name="Alice Admin", email="alice@alpha.example")
    MembershipFactory(
        account=admin.account,
        user__email="fay@alpha.example",
        user__full_name="Fay Free",
        username="fay",
        seat=Membership.Seat.FREE,
    )
    conversation = a_conversation(admin.account, assignee=admin)
    login(page, "fay@alpha.example", PASSWORD)
    page.goto(reverse("inboxes:thread", args=["alpha", conversation.pk]))

    expect(page.get_by_role("button", name="Close conversation")).to_be_disabled()
    expect(page.get_by_role("button", name="Create ticket")).to_be_disabled()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    expect(page.get_by_role("button", name="Add note")).to_be_enabled()
    expect(page.locator("#assign-refusal")).to_contain_text("this one is assigned to Alice Admin")
    expect(page.locator("#ticket-refusal")).to_have_text(
        "Tickets come with a paid seat. Ask an admin for one to create tickets."
    )
    screenshot(page, "thread-free-seat-desktop")
    assert_accessible(page)
    assert_fits_mobile(page)
    page.set_viewport_size(DESKTOP)
