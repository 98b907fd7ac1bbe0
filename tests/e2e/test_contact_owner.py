"""An admin changes a contact's owner on the contact page (D6, H6)."""

from django.urls import reverse
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from inboxes.models import Contact
from inboxhub.models import Account, Membership
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot


def acme_contact() -> Contact:
    with scopes_disabled():
        acme = Account.objects.get(subdomain="acme")
        return Contact.objects.create(account=acme, email="carol@customer.example", name="Carol Customer")


def owner_id(contact: Contact) -> int | None:
    with scopes_disabled():
        return Contact.objects.values_list("owner_id", flat=True).get(pk=contact.pk)


def test_an_admin_changes_a_contacts_owner_and_it_is_kept_after_a_reload(page, demo):
    contact = acme_contact()
    login(page, "admin@acme.example")
    page.goto(reverse("contacts:detail", args=["acme", contact.pk]))
    block = page.locator("#contact-owner")
    expect(block).to_contain_text("No owner")
    page.evaluate("window.__sameDocument = true")

    page.get_by_label("Contact owner").select_option(label="Ada Lovelace (ada@acme.example)")
    page.get_by_role("button", name="Save owner").click()

    expect(page.get_by_role("status")).to_have_text("Carol Customer is now owned by Ada Lovelace.")
    expect(block).to_contain_text("Owner: Ada Lovelace (Service Hub seat)")
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    screenshot(page, "contact-owner-desktop", full_page=False)

    # A free seat may own the contact; the page says it gets no conversations automatically.
    page.get_by_label("Contact owner").select_option(label="Fay Free (fay@acme.example), free seat")
    page.get_by_role("button", name="Save owner").click()
    expect(block).to_contain_text("Owner: Fay Free (Free seat)")
    expect(block).to_contain_text("will not give them this contact's conversations")
    with scopes_disabled():
        assert owner_id(contact) == Membership.objects.get(user__email="fay@acme.example").pk

    page.reload()
    expect(page.locator("#contact-owner")).to_contain_text("Owner: Fay Free (Free seat)")
    expect(page.get_by_label("Contact owner")).to_have_value(str(owner_id(contact)))
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "contact-owner-mobile", full_page=False)
    assert_accessible(page)
    page.set_viewport_size(DESKTOP)


def test_an_agent_sees_the_owner_without_a_picker(page, demo):
    contact = acme_contact()
    with scopes_disabled():
        ada = Membership.objects.get(user__email="ada@acme.example")
        Contact.objects.filter(pk=contact.pk).update(owner=ada)
    login(page, "ben@acme.example")
    page.goto(reverse("contacts:detail", args=["acme", contact.pk]))

    expect(page.locator("#contact-owner")).to_contain_text("Owner: Ada Lovelace (Service Hub seat)")
    expect(page.get_by_label("Contact owner")).to_have_count(0)
    assert_accessible(page)
