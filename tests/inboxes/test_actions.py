"""Every conversation action asks one function (H4, B6, B7): a table of who may do what, by crafted POSTs.

An agent off a restricted inbox's list gets 404 (they cannot see it); an admin
off it gets 403; on the list, a paid seat may do everything, and a free seat
may reply to, assign, close and reopen conversations that are unassigned or
theirs, and write notes anywhere, but create no ticket. A refusal changes
nothing; the thread shows the same reason beside the disabled control.
"""

import pytest
from django.urls import reverse
from django.utils.html import escape
from django_scopes import scope, scopes_disabled

from inboxes.models import Contact, Conversation, Inbox, InboxAccess, Message
from inboxes.permissions import (
    NOT_ON_ACCESS_LIST,
    PAID_SEAT_ONLY,
    ConversationAction,
    conversation_action_refusal,
)
from inboxhub.models import Membership
from tests.inboxes.helpers import default_inbox
from tests.inboxes.inbox_settings_helpers import make_member
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

AGENT, ADMIN = Membership.Permission.AGENT, Membership.Permission.ACCOUNT_ADMIN
PAID, FREE = Membership.Seat.SERVICE_HUB, Membership.Seat.FREE
ACTIONS = ["reply", "note", "assign", "close", "reopen", "ticket"]


def expected(role, seat, on_list, assignee, action) -> int:
    """The status a crafted POST gets: 302 when the action is done, else 403 or 404."""
    if not on_list:
        return 403 if role == ADMIN else 404
    if seat == PAID or action == "note":
        return 302
    if action == "ticket":
        return 403
    return 403 if assignee == "someone else" else 302


CASES = [
    (role, seat, True, assignee, action)
    for role in (AGENT, ADMIN)
    for seat in (PAID, FREE)
    for assignee in ("nobody", "them", "someone else")
    for action in ACTIONS
] + [
    (role, seat, False, "nobody", action)
    for role in (AGENT, ADMIN)
    for seat in (PAID, FREE)
    for action in ACTIONS
]


def case_id(case) -> str:
    role, seat, on_list, assignee, action = case
    listing = "on the list" if on_list else "off the list"
    return f"{role}-{seat}-{listing}-assigned to {assignee}-{action}"


def conversation_for(admin, person, *, on_list: bool, assignee: str, status: str) -> Conversation:
    inbox = default_inbox(admin.account)
    colleague = make_member(admin.account, "Cleo Colleague")
    with scopes_disabled():
        # Restricted to the colleague (and the person, when on the list): the admin fixture is off it.
        Inbox.objects.filter(pk=inbox.pk).update(access=Inbox.Access.SPECIFIC)
        InboxAccess.objects.create(account=admin.account, inbox=inbox, member=colleague)
        if on_list:
            InboxAccess.objects.create(account=admin.account, inbox=inbox, member=person)
        contact = Contact.objects.create(account=admin.account, email="carol@customer.example", name="Carol")
        return Conversation.objects.create(
            account=admin.account,
            inbox=inbox,
            contact=contact,
            subject="Where is my order?",
            status=status,
            assignee={"nobody": None, "them": person, "someone else": colleague}[assignee],
        )


def state_of(conversation) -> tuple:
    """Everything an action could change: assignee, status, messages by direction, ticket."""
    with scopes_disabled():
        fresh = Conversation.objects.get(pk=conversation.pk)
        directions = sorted(
            Message.objects.filter(conversation=conversation).values_list("direction", flat=True)
        )
        has_ticket = Ticket.objects.filter(conversation=conversation).exists()
    return fresh.assignee_id, fresh.status, directions, has_ticket


def post(client, conversation, action: str, person):
    args = [conversation.account.subdomain, conversation.pk]
    if action == "reply":
        return client.post(reverse("inboxes:reply", args=args), {"body": "Your parcel left this morning."})
    if action == "note":
        return client.post(reverse("conversations:note", args=args), {"body": "Called her back."})
    if action == "assign":
        # Take it, or give it back when it is already theirs: either way the assignee changes.
        data = {"assignee": ""} if conversation.assignee_id == person.pk else {"to": "me"}
        return client.post(reverse("conversations:assign", args=args), data)
    if action in ("close", "reopen"):
        return client.post(reverse(f"conversations:{action}", args=args))
    return client.post(reverse("tickets:create", args=args))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_each_action_is_done_or_refused_and_a_refusal_changes_nothing(client, admin, case):
    role, seat, on_list, assignee, action = case
    person = make_member(admin.account, "Pat Person", permission=role, seat=seat)
    status = "closed" if action == "reopen" else "open"
    conversation = conversation_for(admin, person, on_list=on_list, assignee=assignee, status=status)
    before = state_of(conversation)
    client.force_login(person.user)

    r = post(client, conversation, action, person)

    assert r.status_code == expected(role, seat, on_list, assignee, action)
    if r.status_code == 302:
        assert state_of(conversation) != before
    else:
        assert state_of(conversation) == before


# --- the reasons, in the user's words, and the thread showing them ---


def test_an_admin_off_the_list_reads_why_on_the_403_page(client, admin):
    person = make_member(admin.account, "Ada Admin", permission=ADMIN)
    conversation = conversation_for(admin, person, on_list=False, assignee="nobody", status="open")
    client.force_login(person.user)

    r = client.post(reverse("conversations:close", args=[conversation.account.subdomain, conversation.pk]))

    assert r.status_code == 403
    assert escape(NOT_ON_ACCESS_LIST.format(inbox="Inbox")) in r.text


def test_a_free_seat_reads_whose_conversation_it_is(admin):
    fay = make_member(admin.account, "Fay Free", seat=FREE)
    conversation = conversation_for(admin, fay, on_list=True, assignee="someone else", status="open")

    with scope(account=admin.account):
        conversation = Conversation.objects.select_related("inbox", "assignee__user").get(pk=conversation.pk)
        refusals = {
            action: conversation_action_refusal(fay, conversation, action) for action in ConversationAction
        }

    free_seat = "With a free seat you can {} only conversations that are unassigned or assigned to you; "
    theirs = "this one is assigned to Cleo Colleague."
    assert refusals == {
        "reply": "With a free seat you can reply only to conversations that are unassigned or assigned "
        "to you; " + theirs,
        "note": None,
        "assign": free_seat.format("assign") + theirs + " Ask an admin for a paid seat to reassign it.",
        "status": free_seat.format("close or reopen") + theirs,
        "ticket": PAID_SEAT_ONLY["ticket"],
    }


def test_the_thread_disables_each_refused_control_and_says_why(client, admin):
    fay = make_member(admin.account, "Fay Free", seat=FREE)
    conversation = conversation_for(admin, fay, on_list=True, assignee="someone else", status="open")
    client.force_login(fay.user)

    page = client.get(reverse("inboxes:thread", args=[conversation.account.subdomain, conversation.pk])).text

    assert 'id="assign-refusal">With a free seat you can assign only conversations' in page
    assert '<fieldset class="action-fields" disabled aria-describedby="assign-refusal">' in page
    assert 'disabled aria-describedby="status-refusal">Close conversation</button>' in page
    assert f'id="ticket-refusal">{escape(PAID_SEAT_ONLY["ticket"])}</p>' in page
    assert 'id="composer-refusal">With a free seat you can reply only' in page
    assert 'id="note-refusal"' not in page  # notes stay open to a free seat


def test_on_the_list_with_a_paid_seat_nothing_is_disabled(client, admin):
    ada = make_member(admin.account, "Ada Agent")
    conversation = conversation_for(admin, ada, on_list=True, assignee="someone else", status="open")
    client.force_login(ada.user)

    page = client.get(reverse("inboxes:thread", args=[conversation.account.subdomain, conversation.pk])).text

    assert "-refusal" not in page
    assert '<select id="assignee" name="assignee">' in page


@pytest.mark.parametrize("action", ACTIONS)
def test_an_outsider_gets_404_and_nothing_changes(client, admin, outsider, action):
    conversation = conversation_for(admin, outsider, on_list=False, assignee="nobody", status="open")
    before = state_of(conversation)
    client.force_login(outsider.user)

    assert post(client, conversation, action, outsider).status_code == 404
    assert state_of(conversation) == before
