"""The tickets page (H4, C11) in Chromium: accessible, fits 390 px, stage changed in place by htmx."""

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from inboxes.models import Contact, Conversation
from inboxhub.models import Account
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot
from tickets.models import Pipeline, Ticket


@pytest.fixture
def ticket(demo) -> Ticket:
    with scopes_disabled():
        acme = Account.objects.get(subdomain="acme")
        inbox = acme.inboxes.get(is_default=True)
        contact = Contact.objects.create(account=acme, email="carol@customer.example", name="Carol Customer")
        pipeline = Pipeline.objects.get(account=acme, is_default=True)
        new = pipeline.stages.get(name="New")
        conversation = Conversation.objects.create(
            account=acme, inbox=inbox, contact=contact, subject="My order never arrived"
        )
        return Ticket.objects.create(account=acme, conversation=conversation, pipeline=pipeline, stage=new)


def stage_of(ticket: Ticket) -> str:
    with scopes_disabled():
        return Ticket.objects.select_related("stage").get(pk=ticket.pk).stage.name


def test_the_tickets_page_is_accessible_and_fits_390_px(page, ticket):
    login(page, "ada@acme.example")
    response = page.goto(reverse("tickets:board", args=["acme"]))

    assert response.status == 200
    assert page.locator("main").count() == 1
    assert page.locator("h1").count() == 1
    assert page.locator("[style]").count() == 0
    assert page.locator("script:not([src])").count() == 0
    expect(page.get_by_role("link", name="Tickets")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("link", name="My order never arrived")).to_be_visible()
    screenshot(page, "tickets-page-desktop")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "tickets-page-mobile")
    assert_accessible(page)
    page.set_viewport_size(DESKTOP)


def test_a_stage_change_updates_the_row_without_reload_and_is_kept(page, ticket):
    login(page, "ada@acme.example")
    page.goto(reverse("tickets:board", args=["acme"]))
    page.evaluate("window.__notReloaded = true")

    row = page.locator(f"#ticket-{ticket.pk}")
    row.get_by_label("Stage of “My order never arrived”").select_option(label="Waiting on us")
    with page.expect_response(lambda response: response.url.endswith(f"/{ticket.pk}/stage/")) as moved:
        row.get_by_role("button", name="Move “My order never arrived” to the chosen stage").click()
    assert moved.value.status == 200
    expect(page.locator(f"#ticket-{ticket.pk} .htmx-settling")).to_have_count(0)

    expect(page.locator(f"#ticket-{ticket.pk}-stage option:checked")).to_have_text("Waiting on us")
    assert page.evaluate("window.__notReloaded === true"), "the page reloaded"
    assert stage_of(ticket) == "Waiting on us"
    page.reload()
    expect(page.locator(f"#ticket-{ticket.pk}-stage option:checked")).to_have_text("Waiting on us")


def test_the_thread_shows_the_ticket_beside_the_conversation(page, ticket):
    login(page, "ada@acme.example")
    page.goto(reverse("inboxes:thread", args=["acme", ticket.conversation_id]))

    panel = page.get_by_role("region", name="Ticket")
    expect(panel).to_contain_text("Support pipeline")
    expect(panel).to_contain_text("New")
    assert_accessible(page)
    assert_fits_mobile(page)


def test_an_agent_sets_the_tickets_priority_and_owner_from_the_thread(page, ticket):
    login(page, "ada@acme.example")
    page.goto(reverse("inboxes:thread", args=["acme", ticket.conversation_id]))
    panel = page.get_by_role("region", name="Ticket")

    panel.get_by_label("Priority").select_option(label="Urgent")
    panel.get_by_role("button", name="Set priority").click()
    expect(page.get_by_text("Priority set to Urgent.")).to_be_visible()
    panel.get_by_label("Owner").select_option(label="Ben Carter")
    panel.get_by_role("button", name="Set owner").click()
    expect(page.get_by_text("Ben Carter owns this ticket now.")).to_be_visible()

    expect(panel.get_by_label("Priority").locator("option:checked")).to_have_text("Urgent")
    expect(panel.get_by_label("Owner").locator("option:checked")).to_have_text("Ben Carter")
    activity = page.get_by_role("region", name="Activity")
    expect(activity).to_contain_text("set its ticket's priority to Urgent (was Medium)")
    expect(activity).to_contain_text("gave its ticket to Ben Carter")
    with scopes_disabled():
        saved = Ticket.objects.select_related("owner__user").get(pk=ticket.pk)
    assert (saved.priority, saved.owner.user.email) == ("urgent", "ben@acme.example")
    screenshot(page, "thread-ticket-priority-owner")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "thread-ticket-priority-owner-mobile")
    page.set_viewport_size(DESKTOP)
