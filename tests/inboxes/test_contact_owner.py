"""Admins set, change and clear a contact's owner; Contact owner mode uses it (D6, H6, A2)."""

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from inboxes.models import Contact, Conversation
from inboxes.services import set_contact_owner
from inboxhub.models import AuditEntry, Membership
from ingest.pipeline import process_inbound_message
from routing.models import AssignmentRule
from tests.factories import MembershipFactory
from tests.inboxes.helpers import address_of, raw_mail, spool

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
REFUSED = "Choose a member of this account as the owner."


@pytest.fixture
def contact(admin) -> Contact:
    return Contact.objects.create(
        account=admin.account, email="carol@customer.example", name="Carol Customer"
    )


@pytest.fixture
def fay(admin) -> Membership:
    return MembershipFactory(
        account=admin.account,
        user__email="fay@alpha.example",
        user__full_name="Fay Free",
        username="fay",
        seat=Membership.Seat.FREE,
    )


def page_url(contact) -> str:
    return reverse("contacts:detail", args=[contact.account.subdomain, contact.pk])


def owner_url(contact) -> str:
    return reverse("contacts:owner", args=[contact.account.subdomain, contact.pk])


def owner_of(contact) -> int | None:
    with scopes_disabled():
        return Contact.objects.values_list("owner_id", flat=True).get(pk=contact.pk)


def owner_changes(contact) -> list[AuditEntry]:
    with scopes_disabled():
        return list(AuditEntry.objects.filter(action="contact_owner_set").order_by("pk"))


def give(contact, owner, *, by):
    with scope(account=contact.account):
        return set_contact_owner(contact, owner, by=by)


def test_an_admin_sets_the_owner_and_the_page_shows_it(client, admin, agent, contact):
    client.force_login(admin.user)
    assert "No owner" in client.get(page_url(contact)).text

    r = client.post(owner_url(contact), {"owner": agent.pk}, follow=True)

    assert r.redirect_chain == [(page_url(contact), 302)]
    assert "Carol Customer is now owned by Bob Agent." in r.text
    assert "Owner: <strong>Bob Agent</strong> (Service Hub seat)" in r.text
    assert owner_of(contact) == agent.pk
    [change] = owner_changes(contact)
    assert change.actor_id == admin.pk
    assert change.details == {"owner": agent.pk, "previous": None}


def test_an_admin_changes_the_owner_and_the_owner_block_is_swapped(client, admin, agent, contact):
    give(contact, agent, by=admin)
    client.force_login(admin.user)

    r = client.post(owner_url(contact), {"owner": admin.pk}, headers=HTMX)

    assert r.status_code == 200
    assert r.text.lstrip().startswith('<section class="card contact-owner" id="contact-owner"')
    assert "<html" not in r.text
    assert "Owner: <strong>Alice Admin</strong>" in r.text
    assert "Carol Customer is now owned by Alice Admin." in r.text
    assert owner_of(contact) == admin.pk
    assert owner_changes(contact)[-1].details == {"owner": admin.pk, "previous": agent.pk}
    assert owner_changes(contact)[-1].actor_id == admin.pk


def test_an_admin_clears_the_owner(client, admin, agent, contact):
    give(contact, agent, by=admin)
    client.force_login(admin.user)

    r = client.post(owner_url(contact), {"owner": ""}, follow=True)

    assert "Carol Customer has no owner now." in r.text
    assert "Owner: <strong>" not in r.text and "No owner" in r.text
    assert owner_of(contact) is None
    assert owner_changes(contact)[-1].details == {"owner": None, "previous": agent.pk}


def test_saving_the_same_owner_again_records_nothing(client, admin, agent, contact):
    give(contact, agent, by=admin)
    client.force_login(admin.user)

    client.post(owner_url(contact), {"owner": agent.pk})

    assert owner_of(contact) == agent.pk
    assert len(owner_changes(contact)) == 1


def test_the_picker_lists_the_members_with_free_seats_marked(client, admin, agent, fay, contact):
    give(contact, agent, by=admin)
    client.force_login(admin.user)

    text = client.get(page_url(contact)).text

    assert '<label for="id_owner">Contact owner</label>' in text
    assert '<option value="">No owner</option>' in text
    assert f'<option value="{agent.pk}" selected>Bob Agent (bob@alpha.example)</option>' in text
    assert f'<option value="{fay.pk}">Fay Free (fay@alpha.example), free seat</option>' in text
    assert "only gives conversations to an owner with a paid seat" in text
    assert 'aria-describedby="id_owner_helptext"' in text


def test_a_free_seat_member_can_own_a_contact_and_is_told_they_get_no_conversations(
    client, admin, fay, contact
):
    client.force_login(admin.user)

    r = client.post(owner_url(contact), {"owner": fay.pk}, follow=True)

    assert owner_of(contact) == fay.pk
    assert "Owner: <strong>Fay Free</strong> (Free seat)" in r.text
    assert (
        "Fay Free has a free seat: automatic assignment by contact owner will not give them "
        "this contact's conversations."
    ) in r.text


def test_another_accounts_member_is_refused_and_the_owner_stays(client, admin, agent, outsider, contact):
    give(contact, agent, by=admin)
    client.force_login(admin.user)

    r = client.post(owner_url(contact), {"owner": outsider.pk})

    assert r.status_code == 400
    assert REFUSED in r.text
    assert 'aria-invalid="true"' in r.text
    assert "Charlie Outsider" not in r.text
    assert owner_of(contact) == agent.pk
    assert len(owner_changes(contact)) == 1


def test_another_accounts_member_is_refused_in_the_swapped_block_too(client, admin, outsider, contact):
    client.force_login(admin.user)

    r = client.post(owner_url(contact), {"owner": outsider.pk}, headers=HTMX)

    assert r.status_code == 200  # htmx swaps only 2xx answers: the block shows the error
    assert 'id="contact-owner"' in r.text and REFUSED in r.text
    assert owner_of(contact) is None
    assert owner_changes(contact) == []


def test_an_agent_sees_the_owner_but_no_picker(client, admin, agent, contact):
    give(contact, admin, by=admin)
    client.force_login(agent.user)

    text = client.get(page_url(contact)).text

    assert "Owner: <strong>Alice Admin</strong> (Service Hub seat)" in text
    assert 'name="owner"' not in text and owner_url(contact) not in text


def test_an_agent_gets_403_and_the_owner_stays(client, admin, agent, contact):
    give(contact, admin, by=admin)
    client.force_login(agent.user)

    r = client.post(owner_url(contact), {"owner": agent.pk})

    assert r.status_code == 403
    assert owner_of(contact) == admin.pk
    assert len(owner_changes(contact)) == 1


def test_an_outsider_gets_404_and_the_owner_stays(client, admin, outsider, contact):
    client.force_login(outsider.user)

    assert client.get(page_url(contact)).status_code == 404
    assert client.post(owner_url(contact), {"owner": outsider.pk}).status_code == 404
    # Their own account's URL with this contact's id: the same 404.
    own = reverse("contacts:owner", args=[outsider.account.subdomain, contact.pk])
    assert client.post(own, {"owner": outsider.pk}).status_code == 404
    assert owner_of(contact) is None
    assert owner_changes(contact) == []


def test_get_on_the_owner_endpoint_is_405(client, admin, contact):
    client.force_login(admin.user)
    assert client.get(owner_url(contact)).status_code == 405


def test_a_contact_owner_from_another_account_cannot_exist(admin, outsider, contact):
    with pytest.raises(AssertionError):
        give(contact, outsider, by=admin)
    assert owner_of(contact) is None


def test_the_service_refuses_an_agent(admin, agent, contact):
    with pytest.raises(PermissionDenied):
        give(contact, agent, by=agent)
    assert owner_of(contact) is None


def test_contact_owner_mode_gives_a_new_conversation_to_the_owner_set_here(admin, agent, inbox, contact):
    AssignmentRule.objects.create(
        account=admin.account, inbox=inbox, enabled=True, assign_to=AssignmentRule.AssignTo.CONTACT_OWNER
    )
    give(contact, agent, by=admin)
    to = address_of(inbox)

    process_inbound_message(spool(raw_mail(to=to), to).pk)

    with scopes_disabled():
        conversation = Conversation.objects.get(account=admin.account)
    assert conversation.contact_id == contact.pk
    assert conversation.assignee_id == agent.pk
