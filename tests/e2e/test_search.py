"""Search in Chromium (issue 17): the inbox page's box, each field, highlights, filters, who sees what."""

from datetime import timedelta

from django.utils import timezone
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from inboxes.models import Conversation, Inbox
from inboxes.services import add_inbox
from inboxhub.models import Account, Membership
from tests.e2e.conftest import assert_accessible, assert_fits_mobile, login, screenshot
from tests.inboxes.helpers import listed_conversation


def conversation(inbox: Inbox, subject: str, text: str, *, email: str, name: str, **fields) -> Conversation:
    at = timezone.now() - timedelta(minutes=10)
    return listed_conversation(
        inbox, subject, email=email, name=name, text=text, at=at, sender=(name, email), **fields
    )


def acme_inbox() -> Inbox:
    with scopes_disabled():
        return Inbox.objects.get(account__subdomain="acme", is_default=True)


def results(page) -> list[str]:
    return page.locator(".search-result .search-subject").all_inner_texts()


def test_an_agent_finds_a_conversation_by_each_field_from_the_inbox_page(page, demo):
    inbox = acme_inbox()
    conversation(
        inbox,
        "Cracked teapot lid",
        "The lid of the teapot arrived cracked. <img src=x onerror=alert(1)>",
        email="wilhelmina@pottery.example",
        name="Wilhelmina Crane",
    )
    conversation(
        inbox, "Invoice question", "Where is invoice 7731?", email="otto@ledger.example", name="Otto Berg"
    )
    login(page, "ada@acme.example")

    page.goto("/a/acme/inbox/")
    box = page.get_by_role("searchbox", name="Search conversations")
    box.fill("teapot")
    box.press("Enter")
    page.wait_for_url("**/inbox/search/?q=teapot")
    expect(page.get_by_role("heading", level=1)).to_have_text("Search")
    expect(page.get_by_role("status")).to_contain_text("1 conversation matches “teapot”.")
    assert results(page) == ["Cracked teapot lid"]
    marked = page.locator(".search-result mark").all_inner_texts()
    assert {word.lower() for word in marked} == {"teapot"}
    # The hostile text is shown as text: no image element came from it.
    expect(page.locator(".search-snippet")).to_contain_text("<img src=x onerror=alert(1)>")
    assert page.locator(".search-result img").count() == 0
    assert_accessible(page)

    for query, subject in [
        ("Wilhelmina", "Cracked teapot lid"),  # the contact's name
        ("otto@ledger.example", "Invoice question"),  # the contact's address
        ("invoice", "Invoice question"),  # the subject
        ("7731", "Invoice question"),  # the message text
    ]:
        box = page.get_by_role("searchbox", name="Search conversations")
        box.fill(query)
        box.press("Enter")
        page.wait_for_load_state()
        assert results(page) == [subject], query

    page.get_by_role("link", name="Invoice question").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Invoice question")


def test_the_filters_narrow_the_results_and_the_page_fits_a_phone(page, demo):
    inbox = acme_inbox()
    conversation(inbox, "Kettle A", "kettle leaks", email="a@kettle.example", name="Kim A")
    conversation(inbox, "Kettle B", "kettle leaks", email="b@kettle.example", name="Kim B", status="closed")
    login(page, "ada@acme.example")
    page.goto("/a/acme/inbox/search/?q=kettle")
    assert sorted(results(page)) == ["Kettle A", "Kettle B"]

    page.get_by_text("Filters and sorting").click()
    page.get_by_label("Status").select_option("closed")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**status=closed**")
    assert results(page) == ["Kettle B"]
    expect(page.get_by_label("Status")).to_have_value("closed")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "search-filtered-390")


def test_an_agent_finds_nothing_of_an_inbox_hidden_from_them_or_of_another_account(page, demo):
    with scopes_disabled():
        acme = Account.objects.get(subdomain="acme")
        admin = Membership.objects.get(account=acme, user__email="admin@acme.example")
        globex_inbox = Inbox.objects.get(account__subdomain="globex", is_default=True)
    with scope(account=acme):
        private = add_inbox(
            acme, name="Board", access=Inbox.Access.SPECIFIC, members=[admin], teams=[], by=admin
        )
    conversation(private, "Acquisition", "codeword pelicanfish", email="cfo@acme.example", name="Chief")
    conversation(globex_inbox, "Globex plans", "codeword quokkafish", email="x@globex.example", name="Gx")
    conversation(acme_inbox(), "Birds", "a pelicanfish flew by", email="bird@watch.example", name="Bird")

    login(page, "ada@acme.example")
    page.goto("/a/acme/inbox/search/?q=pelicanfish")
    assert results(page) == ["Birds"]
    page.goto("/a/acme/inbox/search/?q=quokkafish")
    expect(page.get_by_role("status")).to_have_text("No conversation matches “quokkafish”.")
    assert results(page) == []
    assert_accessible(page)
