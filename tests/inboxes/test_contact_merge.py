"""Merging two contacts of the same person (H6): who may, what moves, where later mail lands, A2."""

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from inboxes.contact_merge import merge_contacts
from inboxes.models import Contact, ContactAddress, ContactMerge, Conversation, ConversationEvent, Message
from inboxhub.lib.mail.parsing import Address
from inboxhub.models import AuditEntry
from tests.inboxes.helpers import parsed, receive

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
DAVE = Address(name="Dave Work", email="carol.work@bigcorp.example")


def contact_url(contact) -> str:
    return reverse("contacts:detail", args=[contact.account.subdomain, contact.pk])


def merge_url(contact) -> str:
    return reverse("contacts:merge", args=[contact.account.subdomain, contact.pk])


def thread_url(conversation) -> str:
    return reverse("inboxes:thread", args=[conversation.account.subdomain, conversation.pk])


@pytest.fixture
def carol(inbox) -> Contact:
    """Carol with one conversation from her own address."""
    return receive(inbox, parsed(subject="Order from home")).conversation.contact


@pytest.fixture
def work(inbox) -> Contact:
    """Carol again, from her work address: another contact, with two conversations."""
    receive(inbox, parsed(sender=DAVE, subject="Invoice for work", message_id="w1@bigcorp.example"))
    return receive(inbox, parsed(sender=DAVE, subject="Second work order")).conversation.contact


def exists(contact) -> bool:
    with scopes_disabled():
        return Contact.objects.filter(pk=contact.pk).exists()


def contact_ids_of_conversations(inbox) -> set[int]:
    with scopes_disabled():
        return set(Conversation.objects.filter(inbox=inbox).values_list("contact_id", flat=True))


def merge(kept, other, by):
    with scope(account=kept.account):
        return merge_contacts(kept, other, by=by)


def test_an_admin_finds_the_other_contact_and_is_told_what_will_move(client, admin, carol, work):
    client.force_login(admin.user)

    r = client.post(merge_url(carol), {"email": " Carol.Work@BigCorp.example "}, headers=HTMX)

    assert r.text.lstrip().startswith('<section class="card contact-merge" id="contact-merge"')
    assert (
        "Merge <strong>Dave Work</strong> (carol.work@bigcorp.example) into <strong>Carol Customer</strong>? "
        "2 conversations move here, and carol.work@bigcorp.example becomes another address of this contact"
    ) in r.text
    assert f'name="other" value="{work.pk}"' in r.text
    assert exists(work)  # nothing changes before the confirmation


def test_confirming_moves_the_conversations_and_keeps_the_address(client, admin, inbox, carol, work):
    client.force_login(admin.user)

    r = client.post(merge_url(carol), {"other": work.pk}, headers=HTMX)

    assert r.headers["HX-Redirect"] == contact_url(carol)
    assert not exists(work)
    assert contact_ids_of_conversations(inbox) == {carol.pk}
    with scopes_disabled():
        assert list(ContactAddress.objects.filter(contact=carol).values_list("email", flat=True)) == [
            "carol.work@bigcorp.example"
        ]
    text = client.get(contact_url(carol)).text
    assert (
        "Dave Work was merged into Carol Customer: 2 conversations moved here, and mail from "
        "carol.work@bigcorp.example now lands on this contact."
    ) in text
    conversations = text.split('id="contact-conversations"')[1].split("</section>")[0]
    assert "Order from home" in conversations and "Invoice for work" in conversations
    assert "Second work order" in text.split('id="timeline"')[1]
    assert 'also <a href="mailto:carol.work@bigcorp.example">' in text


def test_the_merge_is_on_the_kept_contacts_page_and_in_the_audit_trail(client, admin, carol, work):
    client.force_login(admin.user)
    client.post(merge_url(carol), {"other": work.pk})

    text = client.get(contact_url(carol)).text
    history = text.split('id="contact-merges"')[1].split("</section>")[0]
    assert "Alice Admin merged Dave Work (carol.work@bigcorp.example) into this contact on" in history
    assert "2 conversations moved." in history
    with scopes_disabled():
        [entry] = AuditEntry.objects.filter(action="contact_merged")
    assert entry.actor_id == admin.pk
    assert (
        entry.details["merged"] == work.pk and entry.details["merged_email"] == "carol.work@bigcorp.example"
    )
    assert entry.details["conversations"] == 2


def test_each_moved_conversation_says_so_in_its_activity(client, admin, inbox, carol, work):
    with scopes_disabled():
        moved = Conversation.objects.get(subject="Invoice for work")
        stayed = Conversation.objects.get(subject="Order from home")
    merge(carol, work, admin)
    client.force_login(admin.user)

    activity = client.get(thread_url(moved)).text.split('class="activity-list"')[1].split("</ol>")[0]
    assert (
        "Alice Admin merged the contact Dave Work (carol.work@bigcorp.example) into Carol Customer "
        "(carol@customer.example): this conversation moved with it"
    ) in activity
    with scopes_disabled():
        assert not ConversationEvent.objects.filter(conversation=stayed, kind="contact_merged").exists()


def test_mail_from_the_merged_address_lands_on_the_kept_contact(admin, inbox, carol, work):
    merge(carol, work, admin)

    later = receive(inbox, parsed(sender=Address(name="", email="CAROL.WORK@bigcorp.example"), subject="New"))

    assert later.conversation.contact_id == carol.pk
    with scopes_disabled():
        assert not Contact.objects.filter(email__iexact="carol.work@bigcorp.example").exists()


def test_a_reply_from_the_merged_address_is_the_contacts_own(admin, inbox, carol, work):
    merge(carol, work, admin)

    reply = receive(inbox, parsed(sender=DAVE, in_reply_to=["w1@bigcorp.example"]))

    assert reply.conversation.contact_id == carol.pk
    assert reply.sender_role == Message.SenderRole.CONTACT


def test_mail_flagged_as_a_different_sender_before_the_merge_becomes_the_contacts(
    client, admin, inbox, carol, work
):
    first = receive(inbox, parsed(message_id="home1@customer.example", subject="Home thread"))
    flagged = receive(inbox, parsed(sender=DAVE, in_reply_to=["home1@customer.example"], text="From work!"))
    assert flagged.conversation_id == first.conversation_id and flagged.is_different_sender
    client.force_login(admin.user)
    assert "From work!" not in client.get(contact_url(carol)).text.split('id="timeline"')[1]

    merge(carol, work, admin)

    with scopes_disabled():
        assert Message.objects.get(pk=flagged.pk).sender_role == Message.SenderRole.CONTACT
    assert "From work!" in client.get(contact_url(carol)).text.split('id="timeline"')[1]


def test_the_kept_contact_keeps_its_name_and_owner_and_gets_an_owner_it_lacked(admin, agent, carol, work):
    with scopes_disabled():
        Contact.objects.filter(pk=work.pk).update(owner=agent)

    merge(carol, work, admin)

    with scopes_disabled():
        kept = Contact.objects.get(pk=carol.pk)
    assert kept.name == "Carol Customer" and kept.owner_id == agent.pk


def test_merging_again_carries_the_earlier_addresses_and_history(admin, inbox, carol, work):
    merge(carol, work, admin)
    third = receive(inbox, parsed(sender=Address(name="", email="c@third.example"))).conversation.contact

    merge(third, carol, admin)

    later = receive(inbox, parsed(sender=DAVE, subject="After two merges"))
    assert later.conversation.contact_id == third.pk
    with scopes_disabled():
        assert set(ContactAddress.objects.filter(contact=third).values_list("email", flat=True)) == {
            "carol.work@bigcorp.example",
            "carol@customer.example",
        }
        assert ContactMerge.objects.filter(contact=third).count() == 2
    assert contact_ids_of_conversations(inbox) == {third.pk}


def test_submitting_the_merge_twice_merges_once_and_says_so(client, admin, carol, work):
    client.force_login(admin.user)
    client.post(merge_url(carol), {"other": work.pk})

    r = client.post(merge_url(carol), {"other": work.pk}, follow=True)

    assert r.redirect_chain == [(contact_url(carol), 302)]
    assert "These contacts are already merged." in r.text
    with scopes_disabled():
        assert ContactMerge.objects.filter(contact=carol).count() == 1
        assert AuditEntry.objects.filter(action="contact_merged").count() == 1


def test_without_htmx_the_page_asks_then_redirects(client, admin, carol, work):
    client.force_login(admin.user)

    asked = client.post(merge_url(carol), {"email": "carol.work@bigcorp.example"})
    assert asked.status_code == 200 and "<h1>Carol Customer</h1>" in asked.text
    assert "Merge <strong>Dave Work</strong>" in asked.text

    r = client.post(merge_url(carol), {"other": work.pk})
    assert r.status_code == 302 and r.headers["Location"] == contact_url(carol)
    assert not exists(work)


@pytest.mark.parametrize(
    ("email", "error"),
    [
        ("nobody@nowhere.example", "No contact of this account has the address nobody@nowhere.example."),
        ("carol@customer.example", "carol@customer.example is already an address of this contact."),
        ("", "Enter the email address or name of the contact to merge into this one."),
        ("Nobody Known", "No other contact of this account is named Nobody Known."),
        ("Carol Customer", "No other contact of this account is named Carol Customer."),
    ],
)
def test_a_wrong_address_is_refused_with_the_reason(client, admin, carol, work, email, error):
    client.force_login(admin.user)

    r = client.post(merge_url(carol), {"email": email}, headers=HTMX)

    assert r.status_code == 200 and error in r.text
    assert 'role="alert"' in r.text and "Find contact to merge" in r.text
    assert exists(work)


def test_the_other_contact_is_found_by_its_name_too(client, admin, carol, work):
    client.force_login(admin.user)

    r = client.post(merge_url(carol), {"email": "  dave   WORK "}, headers=HTMX)

    assert f'name="other" value="{work.pk}"' in r.text
    assert "Merge <strong>Dave Work</strong> (carol.work@bigcorp.example)" in r.text


def test_a_name_several_contacts_share_asks_for_the_address(client, admin, inbox, carol, work):
    receive(inbox, parsed(sender=Address(name="Dave Work", email="another.dave@elsewhere.example")))
    client.force_login(admin.user)

    r = client.post(merge_url(carol), {"email": "Dave Work"}, headers=HTMX)

    assert "Several contacts are named Dave Work: enter the email address of the one to merge." in r.text
    assert 'name="other"' not in r.text


def test_another_accounts_contact_is_not_found_by_its_address(client, admin, carol, other_inbox):
    bravo = receive(other_inbox, parsed(sender=Address(name="", email="only@bravo-customer.example")))
    client.force_login(admin.user)

    r = client.post(merge_url(carol), {"email": "only@bravo-customer.example"}, headers=HTMX)

    assert "No contact of this account has the address only@bravo-customer.example." in r.text
    assert exists(bravo.conversation.contact)


def test_a_crafted_post_naming_another_accounts_contact_gets_404_and_changes_nothing(
    client, admin, inbox, carol, other_inbox
):
    bravo = receive(other_inbox, parsed(sender=Address(name="", email="x@bravo-customer.example")))
    client.force_login(admin.user)

    r = client.post(merge_url(carol), {"other": bravo.conversation.contact_id})

    assert r.status_code == 404
    assert exists(bravo.conversation.contact)
    with scopes_disabled():
        assert Conversation.objects.get(pk=bravo.conversation_id).contact_id == bravo.conversation.contact_id
        assert not ContactAddress.objects.exists()


def test_an_outsider_gets_404_and_both_contacts_stay(client, outsider, carol, work):
    client.force_login(outsider.user)

    assert client.post(merge_url(carol), {"other": work.pk}).status_code == 404
    url = reverse("contacts:merge", args=[outsider.account.subdomain, carol.pk])
    assert client.post(url, {"other": work.pk}).status_code == 404
    assert exists(carol) and exists(work)


def test_an_agent_cannot_merge_nor_sees_the_form(client, agent, carol, work):
    client.force_login(agent.user)

    assert "Merge contacts" not in client.get(contact_url(carol)).text
    assert client.post(merge_url(carol), {"other": work.pk}).status_code == 403
    assert client.post(merge_url(carol), {"email": "carol.work@bigcorp.example"}).status_code == 403
    assert exists(work)


def test_the_service_refuses_an_agent(agent, carol, work):
    with pytest.raises(PermissionDenied):
        merge(carol, work, agent)
    assert exists(work)


def test_a_contact_is_never_merged_into_itself(client, admin, carol):
    client.force_login(admin.user)

    r = client.post(merge_url(carol), {"other": carol.pk}, headers=HTMX)

    assert "a contact cannot be merged into itself" in r.text
    assert exists(carol)
