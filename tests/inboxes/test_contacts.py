"""Contacts list and contact timeline (H6, C9)."""

import pytest
from django.urls import reverse

from inboxhub.lib.mail.parsing import Address
from tests.inboxes.helpers import forward_of, parsed, receive, verified_as

pytestmark = pytest.mark.django_db


def list_url(account) -> str:
    return reverse("contacts:list", args=[account.subdomain])


def contact_url(contact) -> str:
    return reverse("contacts:detail", args=[contact.account.subdomain, contact.pk])


def test_the_contacts_page_lists_contacts_with_their_message_counts(client, agent, inbox):
    first = receive(inbox, parsed(message_id="a@customer.example"))
    receive(inbox, parsed(in_reply_to=["a@customer.example"]))
    receive(
        inbox,
        parsed(sender=Address(name="", email="mallory@evil.example"), in_reply_to=["a@customer.example"]),
    )
    client.force_login(agent.user)
    text = client.get(list_url(inbox.account)).text
    row = text.split(f'id="contact-{first.conversation.contact_id}"')[1].split("</tr>")[0]
    assert "Carol Customer" in row and "<td>2</td>" in row
    assert "mallory@evil.example" not in text


def test_a_contact_page_shows_the_timeline_with_original_ccs(client, agent, admin, inbox):
    message = receive(
        inbox,
        forward_of(
            Address(name="Carol", email="carol@customer.example"),
            by="alice@alpha.example",
            cc=[Address(name="", email="added@alpha.example")],
            original_cc=[Address(name="", email="dave@customer.example")],
        ),
        verdict=verified_as("alpha.example"),
    )
    client.force_login(agent.user)
    text = client.get(contact_url(message.conversation.contact)).text
    assert "<h1>Carol</h1>" in text
    assert "Broken widget" in text
    assert "dave@customer.example" in text and "added@alpha.example" not in text


def test_a_contact_name_with_markup_is_escaped(client, agent, inbox):
    message = receive(
        inbox, parsed(sender=Address(name="<b onmouseover=alert(1)>Carol</b>", email="c@x.example"))
    )
    client.force_login(agent.user)
    text = client.get(contact_url(message.conversation.contact)).text
    assert "<b onmouseover" not in text and "&lt;b onmouseover=alert(1)&gt;Carol&lt;/b&gt;" in text


def test_an_outsider_gets_404_for_the_contacts_page(client, outsider, inbox):
    client.force_login(outsider.user)
    assert client.get(list_url(inbox.account)).status_code == 404


def test_an_outsider_gets_404_for_a_contact(client, outsider, inbox):
    message = receive(inbox, parsed())
    client.force_login(outsider.user)
    assert client.get(contact_url(message.conversation.contact)).status_code == 404
    url = reverse("contacts:detail", args=[outsider.account.subdomain, message.conversation.contact_id])
    assert client.get(url).status_code == 404


def test_the_contacts_page_needs_the_same_queries_however_many_contacts(
    client, agent, inbox, django_assert_num_queries
):
    receive(inbox, parsed(sender=Address(name="", email="one@customer.example")))
    client.force_login(agent.user)
    client.get(list_url(inbox.account))  # the first visit also writes the session
    # session, user, account, membership, the contact page (1), the switcher's accounts
    with django_assert_num_queries(6):
        client.get(list_url(inbox.account))
    for n in range(4):
        receive(inbox, parsed(sender=Address(name="", email=f"more{n}@customer.example")))
    with django_assert_num_queries(6):
        r = client.get(list_url(inbox.account))
    assert r.text.count('id="contact-') == 5
