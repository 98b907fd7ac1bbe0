"""A1 and advisories 10, 13, 20: a member of account A naming account B's rows gets 404, and nothing changes.

The routes come from the URLconf, so an endpoint added later is covered here without an edit; a
URL kwarg this file cannot fill fails `test_every_id_a_tenant_url_takes_has_a_case`.

Already covered elsewhere, not repeated here:
- tests/inboxhub/test_tenancy.py: B's member on A's subdomain (404, byte-identical to a missing
  account), A's ids under B's own subdomain, anonymous visitors, and the unscoped query that raises.
- tests/inboxes/test_attachments.py: an outsider's attachment download (row 20).
- tests/inboxhub/test_conversation_actions.py, tests/inboxes/test_inbox_access.py: B's member or
  team id in a form field (A2).
"""

import uuid

import pytest
from django.core import signing
from django_scopes import scopes_disabled

from inboxes import inline_images
from inboxes.models import Conversation, Message
from ingest.pipeline import ingest_inbound
from tests.inboxes.helpers import address_of, raw_mail, spool
from tests.inboxhub.conftest import project_rows
from tests.security.conftest import (
    each,
    fill,
    ids_for_route,
    ids_of,
    kwarg_names,
    post_data,
    receive_mail,
    tenant_routes,
)

pytestmark = pytest.mark.django_db

TRANSPORTS = {
    "page": {},
    "htmx": {"HX-Request": "true"},
    "json": {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"},
}
MISSING = {"uuid": str(uuid.UUID(int=1)), "int": 2_000_000_000}

CASES = [
    (route, name, kwarg)
    for route, name in tenant_routes()
    for kwarg in kwarg_names(route)
    if kwarg != "subdomain"
]


def converter(route: str, kwarg: str) -> str:
    return "uuid" if f"<uuid:{kwarg}>" in route else "int"


def refused(response, method: str) -> bool:
    if response.status_code == 405:
        return method not in response["Allow"]
    return response.status_code == 404


def test_every_id_a_tenant_url_takes_has_a_case(world):
    known = set(ids_of(world.a, world.a.open))
    missing = sorted({kwarg for _, _, kwarg in CASES} - known)
    assert missing == [], (
        f"URL kwargs {missing} have no row in tests/security/conftest.py: add one to `ids_of` "
        "so the cross-account walk below covers the new endpoint"
    )


def test_the_walk_sees_the_endpoints_that_act_on_a_conversation():
    names = {name for _, name, _ in CASES}
    assert {"inboxes:reply", "inboxes:retry_reply", "conversations:assign", "tickets:move"} <= names


def test_a_member_naming_another_accounts_row_gets_404_on_every_transport_and_nothing_changes(client, world):
    client.force_login(world.a.admin.user)

    def check(route, name, kwarg):
        ids = ids_for_route(name, world.a, world.a.open)
        foreign = dict(ids, **{kwarg: ids_for_route(name, world.b, world.b.open)[kwarg]})
        missing = dict(ids, **{kwarg: MISSING[converter(route, kwarg)]})
        data = post_data(name, world.a, world.a.open)
        before = project_rows()
        for transport, headers in TRANSPORTS.items():
            for method in ("GET", "POST"):
                send = client.get if method == "GET" else client.post
                body = {} if method == "GET" else data
                answer = send(fill(route, foreign), body, headers=headers)
                assert refused(answer, method), (transport, method, answer.status_code)
                # The same answer as for an id that exists nowhere: nothing hints that B's row exists.
                same = answer.content == send(fill(route, missing), body, headers=headers).content
                assert same, (transport, method, "differs from a missing id's answer")
        assert project_rows() == before

    each(CASES, check)


def test_the_same_endpoints_with_the_accounts_own_ids_are_not_a_404(client, world):
    """The control: the 404s above come from the account check, not from ids that fit nothing."""
    client.force_login(world.a.admin.user)

    def check(route, name):
        url = fill(route, ids_for_route(name, world.a, world.a.open))
        assert client.get(url).status_code in (200, 302, 405)
        assert client.post(url, post_data(name, world.a, world.a.open)).status_code != 404

    # In the URLconf's order, so an endpoint that removes a row (a member, a team) comes after its page.
    each(list(dict.fromkeys((route, name) for route, name, _ in CASES)), check)


# --- lookups by an external key stay in the account (row 13) ---


def test_mail_to_a_citing_a_message_id_of_b_starts_a_new_conversation_in_a(world):
    b_message_id = world.b.open.message.message_id
    to = address_of(world.a.open.inbox)

    ingest_inbound(
        spool(
            raw_mail(
                to=to, message_id="<cites-b@customer.example>", headers=f"In-Reply-To: <{b_message_id}>"
            ),
            to,
        )
    )

    with scopes_disabled():
        cited = Message.objects.get(message_id="cites-b@customer.example")
        assert cited.account_id == world.a.account.pk
        assert cited.conversation_id != world.b.open.conversation.pk
        assert Message.objects.filter(conversation=world.b.open.conversation).count() == 2  # its own two


def test_mail_to_a_with_the_reply_token_of_bs_conversation_is_not_threaded_into_b(world):
    with scopes_disabled():
        b_token_address = world.b.open.reply.reply_to
    token = b_token_address.split("+", 1)[1].split("@", 1)[0]
    local, _, domain = address_of(world.a.open.inbox).partition("@")
    to = f"{local}+{token}@{domain}"

    ingest_inbound(spool(raw_mail(to=to, message_id="<token-of-b@customer.example>"), to))

    with scopes_disabled():
        landed = Message.objects.get(message_id="token-of-b@customer.example")
        assert Message.objects.filter(conversation=world.b.open.conversation).count() == 2
    # A token that does not verify for A is ignored: the mail is a new conversation of A's inbox.
    assert landed.account_id == world.a.account.pk
    assert landed.conversation_id not in (world.b.open.conversation.pk, world.a.open.conversation.pk)
    assert landed.threaded_by == Message.ThreadedBy.NEW_CONVERSATION


def test_the_same_customer_writing_to_both_accounts_is_two_contacts_and_two_conversations(world):
    sender = "Dora <dora@both.example>"
    for side in (world.a, world.b):
        receive_mail(
            side.open.inbox,
            raw_mail(to=address_of(side.open.inbox), sender=sender, message_id="<same-id@both.example>"),
        )

    with scopes_disabled():
        mine = list(
            Message.objects.filter(message_id="same-id@both.example").select_related("conversation__contact")
        )
    assert sorted(m.account_id for m in mine) == sorted([world.a.account.pk, world.b.account.pk])
    assert len({m.conversation.contact_id for m in mine}) == 2
    assert all(m.conversation.contact.account_id == m.account_id for m in mine)
    with scopes_disabled():
        assert Conversation.objects.filter(contact__email="dora@both.example").count() == 2


# --- inline images: a signed URL, not an id (row 20) ---


def test_an_inline_image_token_that_was_tampered_with_or_guessed_is_404(client, world):
    with scopes_disabled():
        attachment = world.b.open.attachment
    good = signing.dumps([attachment.account_id, str(attachment.pk)], salt="not-the-salt", compress=False)
    client.force_login(world.a.admin.user)

    for token in (good, str(attachment.pk), f"{attachment.account_id}:{attachment.pk}", good[:-2] + "xx"):
        assert client.get(f"/inline-images/{token}/").status_code == 404


def test_attachment_ids_are_random_uuids_not_a_sequence(world):
    ids = [world.a.open.attachment.pk, world.a.restricted.attachment.pk, world.b.open.attachment.pk]
    assert all(isinstance(i, uuid.UUID) and i.version == 4 for i in ids)
    assert len({i.int >> 64 for i in ids}) == len(ids)  # no shared prefix a counter would leave


def test_an_inline_image_url_serves_only_images(client, world):
    """A PDF (or HTML, SVG) attachment never comes back through the session-less image URL."""
    with scopes_disabled():
        url = inline_images.signed_url(world.a.open.attachment)

    assert client.get(url).status_code == 404
