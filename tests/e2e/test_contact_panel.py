"""The contact beside the thread and merging two contacts of one person, in Chromium (H6)."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from inboxes.models import Contact, Conversation, Message
from inboxhub.models import Account, Membership
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot


def conversation_of(contact: Contact, subject: str, *, days_ago: int = 0) -> Conversation:
    with scopes_disabled():
        at = timezone.now() - timedelta(days=days_ago)
        conversation = Conversation.objects.create(
            account=contact.account,
            inbox=contact.account.inboxes.get(is_default=True),
            contact=contact,
            subject=subject,
            created_at=at,
            last_message_at=at,
        )
        Message.objects.create(
            account=contact.account,
            conversation=conversation,
            inbox=conversation.inbox,
            from_name=contact.name,
            from_email=contact.email,
            subject=subject,
            text=f"{subject}: please help.",
            created_at=at,
            threaded_by=Message.ThreadedBy.NEW_CONVERSATION,
            attributed_by=Message.AttributedBy.FROM,
        )
        return conversation


def acme_contact(email: str, name: str) -> Contact:
    with scopes_disabled():
        return Contact.objects.create(account=Account.objects.get(subdomain="acme"), email=email, name=name)


def thread_path(conversation: Conversation) -> str:
    return reverse("inboxes:thread", args=["acme", conversation.pk])


def test_the_panel_shows_the_contact_and_an_admin_changes_the_owner_in_place(page, demo):
    carol = acme_contact("carol@customer.example", "Carol Customer")
    reading = conversation_of(carol, "Where is my order?")
    conversation_of(carol, "Refund for the blue mug", days_ago=2)
    login(page, "admin@acme.example")
    page.goto(thread_path(reading))

    panel = page.locator("#contact-panel")
    expect(panel).to_be_in_viewport()
    expect(panel.get_by_role("link", name="Carol Customer")).to_be_visible()
    expect(panel.get_by_role("link", name="carol@customer.example")).to_have_attribute(
        "href", "mailto:carol@customer.example"
    )
    expect(panel.get_by_role("link", name="Refund for the blue mug")).to_be_visible()
    expect(panel).to_contain_text("2\u00a0days ago")
    expect(panel).not_to_contain_text("Where is my order?")
    assert_accessible(page)
    screenshot(page, "contact-panel-desktop", full_page=False)

    page.evaluate("window.__sameDocument = true")
    panel.get_by_label("Contact owner").select_option(label="Ada Lovelace (ada@acme.example)")
    panel.get_by_role("button", name="Save owner").click()
    expect(panel.get_by_role("status")).to_have_text("Carol Customer is now owned by Ada Lovelace.")
    expect(panel).to_contain_text("Owner: Ada Lovelace (Service Hub seat)")
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    with scopes_disabled():
        ada = Membership.objects.get(user__email="ada@acme.example")
        assert Contact.objects.get(pk=carol.pk).owner_id == ada.pk

    assert_fits_mobile(page)
    panel.scroll_into_view_if_needed()
    expect(panel).to_be_in_viewport()
    expect(panel.get_by_role("link", name="Refund for the blue mug")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "contact-panel-mobile", full_page=False)
    page.set_viewport_size(DESKTOP)

    panel.get_by_role("link", name="Refund for the blue mug").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Refund for the blue mug")


def test_an_agent_sees_the_panel_without_the_owner_picker(page, demo):
    carol = acme_contact("carol@customer.example", "Carol Customer")
    reading = conversation_of(carol, "Where is my order?")
    login(page, "ben@acme.example")
    page.goto(thread_path(reading))

    panel = page.locator("#contact-panel")
    expect(panel).to_contain_text("No owner")
    expect(panel).to_contain_text("No other conversations in the inboxes you can see.")
    expect(panel.get_by_label("Contact owner")).to_have_count(0)
    assert_accessible(page)


def test_an_admin_merges_two_contacts_of_one_person(page, demo):
    carol = acme_contact("carol@customer.example", "Carol Customer")
    work = acme_contact("carol.work@bigcorp.example", "Carol at work")
    conversation_of(carol, "Where is my order?", days_ago=1)
    moved = conversation_of(work, "Invoice for the office")
    login(page, "admin@acme.example")
    page.goto(reverse("contacts:detail", args=["acme", carol.pk]))

    merge = page.locator("#contact-merge")
    merge.get_by_label("Email address or name of the other contact").fill("nobody@nowhere.example")
    merge.get_by_role("button", name="Find contact to merge").click()
    expect(merge.get_by_role("alert")).to_have_text(
        "No contact of this account has the address nobody@nowhere.example."
    )
    assert_accessible(page)

    merge.get_by_label("Email address or name of the other contact").fill("carol.work@bigcorp.example")
    merge.get_by_role("button", name="Find contact to merge").click()
    expect(merge).to_contain_text("Merge Carol at work (carol.work@bigcorp.example) into Carol Customer?")
    expect(merge).to_contain_text("1 conversation moves here")
    assert_accessible(page)
    screenshot(page, "contact-merge-confirm", full_page=False)

    merge.get_by_role("button", name="Merge contacts").click()
    expect(page.get_by_text("Carol at work was merged into Carol Customer")).to_be_visible()
    conversations = page.locator("#contact-conversations")
    expect(conversations.get_by_role("link", name="Invoice for the office")).to_be_visible()
    expect(page.locator("#contact-merges")).to_contain_text(
        "Alex Admin merged Carol at work (carol.work@bigcorp.example) into this contact"
    )
    expect(page.locator("h1 + p")).to_contain_text("also carol.work@bigcorp.example")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "contact-merged-mobile")
    page.set_viewport_size(DESKTOP)

    page.goto(thread_path(moved))
    expect(page.locator("#contact-panel").get_by_role("link", name="Carol Customer")).to_be_visible()
    expect(page.locator(".activity-list")).to_contain_text(
        "merged the contact Carol at work (carol.work@bigcorp.example) into Carol Customer"
    )
    with scopes_disabled():
        assert not Contact.objects.filter(pk=work.pk).exists()
