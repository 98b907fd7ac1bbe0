"""Automatic assignment in Chromium: a demo mail arrives assigned, explained, ticketed; a dry run (D8)."""

from django.urls import reverse
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from inboxes.models import Conversation
from inboxhub.models import Account, Membership
from ingest.pipeline import process_inbound_message
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot
from tests.inboxes.helpers import raw_mail, spool


def acme_inbox():
    with scopes_disabled():
        account = Account.objects.get(subdomain="acme")
        return account.inboxes.select_related("account").get(is_default=True)


def mail_to_acme(subject: str, message_id: str) -> Conversation:
    inbox = acme_inbox()
    with scopes_disabled():
        to = inbox.channels.get().fallback_address.address
        process_inbound_message(spool(raw_mail(to=to, subject=subject, message_id=message_id), to).pk)
        return Conversation.objects.select_related("assignee__user", "ticket__stage").get(subject=subject)


def test_a_mail_to_the_demo_arrives_assigned_explained_and_ticketed(page, demo):
    with scopes_disabled():
        Membership.objects.filter(account__subdomain="acme", user__email="ben@acme.example").update(
            availability="away"
        )
    conversation = mail_to_acme("Where is my parcel?", "<parcel@customer.example>")
    assert conversation.assignee.user.email == "ada@acme.example"
    assert conversation.ticket.stage.name == "New"

    login(page, "admin@acme.example")
    page.goto(reverse("inboxes:thread", args=["acme", conversation.pk]))
    decision = page.locator("#assignment-decision")
    expect(decision).to_contain_text(
        "Assigned to Ada Lovelace: available, 0 open, the only candidate"
        " · Ben Carter away · Fay Free free seat"
    )
    expect(page.get_by_role("region", name="Ticket")).to_contain_text("New")
    expect(page.get_by_role("region", name="Ticket")).to_contain_text("Ada Lovelace")
    screenshot(page, "thread-assignment-desktop")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "thread-assignment-mobile")


def test_trying_the_rules_shows_who_would_have_got_what_and_saves_nothing(page, demo):
    for n in range(3):
        mail_to_acme(f"Question {n}", f"<question-{n}@customer.example>")
    inbox = acme_inbox()
    login(page, "admin@acme.example")
    url = reverse("automation:edit", args=["acme", inbox.pk])
    page.goto(url)
    page.get_by_label("Assign only to available users").uncheck()
    page.get_by_role("button", name="Try these rules").click()

    results = page.get_by_role("region", name="If these rules had been on")
    expect(results).to_contain_text("The last 3 conversations")
    expect(results.get_by_role("row")).to_have_count(4)
    expect(results).to_contain_text("Fay Free free seat")
    screenshot(page, "automation-dry-run-desktop")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "automation-dry-run-mobile")
    page.set_viewport_size(DESKTOP)
    page.goto(url)
    expect(page.get_by_label("Assign only to available users")).to_be_checked()  # nothing was saved
