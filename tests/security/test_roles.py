"""A5 (read-only browsing) and A6 (free seats): reads open, writes refused with 403, nothing changes.

A *platform* super admin (someone of the operator's, browsing any account read-only) does not
exist in InboxHub: `User.is_superuser`/`is_staff` are Django's flags, used by nothing, and there is
no admin site. What exists is the account's own `super_admin` permission level. So A5 is tested
twice here: a platform superuser who is no member of the account gets the stranger's 404 everywhere
(no back door), and an account super admin who is not on a restricted inbox's access list (B6)
reads every page of it while every write answers 403.

Already covered elsewhere: tests/inboxes/test_settings_permission_matrix.py (every settings
endpoint by permission level, access listing and seat, free-seat admins on the Automation tab),
tests/inboxes/test_replies.py and tests/inboxhub/test_conversation_actions.py (a free seat
replies to and takes an unassigned conversation; B7's positive side).
"""

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from inboxes.models import Conversation
from inboxhub.models import Membership, User
from routing.models import AssignmentRule
from tests.inboxes.inbox_settings_helpers import make_member
from tests.inboxhub.conftest import project_rows
from tests.security.conftest import each, fill, ids_for_route, post_data, tenant_routes
from tests.security.test_inbox_acl import agent_routes

pytestmark = pytest.mark.django_db

# Not an action inside the inbox (B6 lists reply, comment, assign, close, change ticket): a contact
# may write to several inboxes, and admins manage contact owners for the whole account (D6).
ACCOUNT_WIDE = {"contacts:owner"}


# --- A5: a platform superuser has no way in ---


@pytest.fixture
def platform_superuser(db) -> User:
    return User.objects.create_superuser(email="root@inboxhub.example", password="x", full_name="Root")


def test_a_platform_superuser_who_is_no_member_gets_the_strangers_404_and_changes_nothing(
    client, world, platform_superuser
):
    client.force_login(platform_superuser)

    def check(route, name):
        url = fill(route, ids_for_route(name, world.a, world.a.open))
        before = project_rows()
        for method, send in (("GET", client.get), ("POST", client.post)):
            answer = send(url, {} if method == "GET" else post_data(name, world.a, world.a.open))
            if answer.status_code == 405:
                assert method not in answer["Allow"]
            else:
                assert answer.status_code == 404, (method, answer.status_code)
        assert project_rows() == before

    each(tenant_routes(), check)


# --- A5/B6: a super admin off the access list reads everything, writes nothing ---


def test_a_super_admin_off_the_access_list_reads_every_page_of_the_inbox(client, world):
    client.force_login(world.a.admin.user)

    def check(route, name):
        url = fill(route, ids_for_route(name, world.a, world.a.restricted))
        assert client.get(url).status_code in (200, 405)

    each(agent_routes(), check)


def test_a_super_admin_reading_the_inbox_leaves_no_trace_anyone_else_sees(client, world):
    """No read receipt for others: at most the reader's own unread state (per viewer, H1) moves."""
    admin = world.a.admin
    client.force_login(admin.user)
    before = project_rows()

    for route, name in agent_routes():
        client.get(fill(route, ids_for_route(name, world.a, world.a.restricted)))

    after = project_rows()
    changed = {label for label in after if after[label] != before[label]}
    assert changed <= {"inboxes.ReadState"}, changed
    if changed:
        new = [row for row in after["inboxes.ReadState"] if row not in before["inboxes.ReadState"]]
        assert {row["member_id"] for row in new} == {admin.pk}


def test_a_super_admin_off_the_access_list_gets_403_on_every_write_and_nothing_changes(client, world):
    client.force_login(world.a.admin.user)

    def check(route, name):
        url = fill(route, ids_for_route(name, world.a, world.a.restricted))
        client.get(url)  # reading first: what a read may record is not a write refused below
        before = project_rows()
        for headers in ({}, {"HX-Request": "true"}):
            answer = client.post(url, post_data(name, world.a, world.a.restricted), headers=headers)
            if answer.status_code == 405:
                assert "POST" not in answer["Allow"]
            else:
                assert answer.status_code == 403, (headers, answer.status_code)
        assert project_rows() == before

    each([(r, n) for r, n in agent_routes() if n not in ACCOUNT_WIDE], check)


def test_the_thread_tells_the_super_admin_why_the_controls_are_off(client, world):
    client.force_login(world.a.admin.user)

    page = client.get(reverse("inboxes:thread", args=["alpha", world.a.restricted.conversation.pk])).text

    assert "Only the users and teams on the access list of the inbox" in page
    assert '<fieldset class="composer-fields" disabled' in page


# --- A6: a free seat calling what only paid seats may do ---


@pytest.fixture
def taken(world) -> Conversation:
    """The open inbox's conversation, assigned to Bob (a paid seat)."""
    conversation = world.a.open.conversation
    with scopes_disabled():
        Conversation.objects.filter(pk=conversation.pk).update(assignee=world.a.members["bob"])
    return conversation


def free_seat_calls(world) -> dict[str, tuple[str, dict]]:
    sub, conversation = "alpha", world.a.open.conversation.pk
    return {
        "reply to a conversation someone else has": (
            reverse("inboxes:reply", args=[sub, conversation]),
            {"body": "Mine now."},
        ),
        "retry a reply on a conversation someone else has": (
            reverse("inboxes:retry_reply", args=[sub, conversation, world.a.open.reply.pk]),
            {},
        ),
        "take a conversation someone else has": (
            reverse("conversations:assign", args=[sub, conversation]),
            {"to": "me"},
        ),
        "unassign a conversation someone else has": (
            reverse("conversations:assign", args=[sub, conversation]),
            {"assignee": ""},
        ),
        "hand a conversation someone else has to a third member": (
            reverse("conversations:assign", args=[sub, conversation]),
            {"assignee": world.a.members["sam"].pk},
        ),
    }


CALLS = [
    "reply to a conversation someone else has",
    "retry a reply on a conversation someone else has",
    "take a conversation someone else has",
    "unassign a conversation someone else has",
    "hand a conversation someone else has to a third member",
]


def test_a_free_seat_calling_a_paid_action_directly_gets_403_and_nothing_changes(client, world, taken):
    client.force_login(world.a.members["fay"].user)

    def check(call, headers):
        url, data = free_seat_calls(world)[call]
        before = project_rows()
        answer = client.post(url, data, headers=headers)
        assert answer.status_code == 403, answer.status_code
        assert project_rows() == before

    each([(call, headers) for call in CALLS for headers in ({}, {"HX-Request": "true"})], check)


def test_a_free_seat_admin_turning_automatic_assignment_on_gets_403_and_the_rule_stays_off(client, world):
    fred = make_member(
        world.a.account,
        "Fred Free",
        permission=Membership.Permission.ACCOUNT_ADMIN,
        seat=Membership.Seat.FREE,
    )
    inbox = world.a.open.inbox
    client.force_login(fred.user)
    before = project_rows()

    answer = client.post(
        reverse("automation:edit", args=["alpha", inbox.pk]),
        {"enabled": "on", "assign_to": "specific", "members": [world.a.members["bob"].pk], "capacity": "5"},
    )

    assert answer.status_code == 403
    assert "Only a member with a paid seat can turn on or change automatic assignment." in answer.text
    assert project_rows() == before
    with scopes_disabled():
        assert not AssignmentRule.objects.filter(inbox=inbox, enabled=True).exists()
