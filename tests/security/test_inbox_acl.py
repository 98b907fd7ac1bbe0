"""A4 and advisories 11, 12: an agent taken off an inbox's access list loses every one of its URLs at once.

Every endpoint under /a/<subdomain>/ that names a row of an inbox (its conversations, messages,
attachments, contacts, tickets) is walked from the URLconf; an endpoint added later joins the walk,
and one whose kwargs this file does not know fails `test_every_agent_endpoint_with_an_id_has_a_case`.

Already covered elsewhere: tests/inboxes/test_inbox_access.py (list, thread and attachment GETs after
removal), tests/inboxes/test_inbox_permissions.py (the B6 matrix of `can_view_inbox`/`can_act_in_inbox`).
"""

import pytest
from django.test import Client
from django.urls import reverse

from tests.inboxhub.conftest import project_rows
from tests.security.conftest import each, fill, ids_for_route, kwarg_names, post_data, tenant_routes

pytestmark = pytest.mark.django_db

# Kwargs that name a row living in one inbox: the access list decides who may reach it.
INBOX_ROW_KWARGS = {"inbox_id", "conversation_id", "message_id", "attachment_id", "contact_id", "ticket_id"}
# Endpoints with an id that are not the agent's, and where their access is tested instead.
NOT_AN_AGENTS = {
    "inboxes:retry_failed": "admins only (manage_inboxes): tests/inboxes/test_failed_messages.py",
}


def agent_routes() -> list[tuple[str, str]]:
    return [
        (route, name)
        for route, name in tenant_routes()
        if "/settings/" not in route
        and name not in NOT_AN_AGENTS
        and set(kwarg_names(route)) - {"subdomain"}
        and set(kwarg_names(route)) - {"subdomain"} <= INBOX_ROW_KWARGS
    ]


def access_url(world) -> str:
    return reverse("inbox_settings:access", args=[world.a.account.subdomain, world.a.restricted.inbox.pk])


def set_access(world, *members) -> None:
    """The admin saves the access tab, in a browser session of their own."""
    client = Client()
    client.force_login(world.a.admin.user)
    r = client.post(access_url(world), {"access": "specific", "members": [m.pk for m in members]})
    assert r.status_code == 302, r.status_code


def test_every_agent_endpoint_with_an_id_has_a_case():
    for route, name in tenant_routes():
        ids = set(kwarg_names(route)) - {"subdomain"}
        if "/settings/" in route or not ids or name in NOT_AN_AGENTS:
            continue
        assert ids <= INBOX_ROW_KWARGS, (
            f"{name} ({route}) takes {sorted(ids - INBOX_ROW_KWARGS)}: say in "
            "tests/security/test_inbox_acl.py whether the inbox's access list governs it"
        )


def test_the_walk_covers_viewing_and_every_conversation_action():
    names = {name for _, name in agent_routes()}
    assert {
        "inboxes:inbox",
        "inboxes:thread",
        "inboxes:message_html",
        "inboxes:attachment",
        "inboxes:reply",
        "inboxes:retry_reply",
        "conversations:assign",
        "conversations:close",
        "conversations:reopen",
        "tickets:move",
        "tickets:create",
        "contacts:detail",
    } <= names


def test_an_agent_removed_from_the_access_list_gets_404_at_once_and_nothing_changes(client, world):
    bob, sam = world.a.members["bob"], world.a.members["sam"]
    set_access(world, sam, bob)
    client.force_login(bob.user)
    thread = reverse("inboxes:thread", args=["alpha", world.a.restricted.conversation.pk])
    assert client.get(thread).status_code == 200  # on the list, the agent works here

    set_access(world, sam)

    def check(route, name):
        url = fill(route, ids_for_route(name, world.a, world.a.restricted))
        before = project_rows()
        for headers in ({}, {"HX-Request": "true"}):
            got = client.get(url, headers=headers)
            posted = client.post(url, post_data(name, world.a, world.a.restricted), headers=headers)
            for answer, method in ((got, "GET"), (posted, "POST")):
                if answer.status_code == 405:
                    assert method not in answer["Allow"], (method, answer["Allow"])
                else:
                    assert answer.status_code == 404, (method, headers, answer.status_code)
        assert project_rows() == before

    each(agent_routes(), check)


def test_a_member_on_the_access_list_reaches_the_same_endpoints(client, world):
    """The control: the 404s above come from the access list, not from ids that fit nothing."""
    client.force_login(world.a.members["sam"].user)

    def check(route, name):
        url = fill(route, ids_for_route(name, world.a, world.a.restricted))
        assert client.get(url).status_code in (200, 302, 405)
        # Not 404: acted on, or refused for another reason (only admins set a contact's owner: 403).
        assert client.post(url, post_data(name, world.a, world.a.restricted)).status_code != 404

    each(agent_routes(), check)


def test_no_list_partial_or_count_names_the_inbox_once_the_agent_is_removed(client, world):
    """Advisory 10: each page without an id, as a page and as an htmx partial, is scoped the same."""
    bob = world.a.members["bob"]
    restricted = world.a.restricted
    secrets = [restricted.inbox.name, restricted.conversation.subject, restricted.contact.email]
    lists = [
        (route, name)
        for route, name in tenant_routes()
        if "/settings/" not in route and kwarg_names(route) == ["subdomain"]
    ]
    set_access(world, world.a.members["sam"], bob)
    client.force_login(bob.user)
    seen = client.get(reverse("inboxes:index", args=["alpha"]), {"view": "all"}).text
    assert restricted.inbox.name in seen  # on the list, the agent sees it in the sidebar

    set_access(world, world.a.members["sam"])

    def check(route, name):
        url = fill(route, {"subdomain": "alpha"})
        query = {"current": restricted.inbox.pk, "view": "all"}
        for headers in ({}, {"HX-Request": "true"}):
            text = client.get(url, query, headers=headers).content.decode()
            assert [s for s in secrets if s in text] == [], headers

    each(lists, check)
    assert {"inboxes:index", "contacts:list", "tickets:board"} <= {name for _, name in lists}
