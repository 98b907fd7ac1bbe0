"""Automatic assignment, row by row of its decision table, for mail sent over SMTP to the ingress (D2–D8).

Each row sets one member's seat and availability (or a contact owner's),
the rule's mode, *only available* and capacity, sends one message to the
real ingress (tasks run in place, as without REDIS_URL) and reads who got
the conversation, what the decision says and whether an away owner is told.
"""

import smtplib

import pytest
from django_scopes import scopes_disabled

from inboxes.models import Contact, Conversation
from inboxhub.models import Membership, OutboundEmail
from routing.models import AssignmentDecision, AssignmentRule
from tests.channels_conn.conftest import smtp_server, start_smtp  # noqa: F401 - fixtures
from tests.factories import MembershipFactory, make_account

AVAILABLE, AWAY = Membership.Availability.AVAILABLE, Membership.Availability.AWAY
PAID, FREE = Membership.Seat.SERVICE_HUB, Membership.Seat.FREE
SPECIFIC, OWNER = AssignmentRule.AssignTo.SPECIFIC, AssignmentRule.AssignTo.CONTACT_OWNER
SENDER = "carol@customer.example"


def row(
    mode, only_available, seat, availability, *, capacity=None, open_already=0, owner=True, to, says, told
):
    return pytest.param(
        {
            "mode": mode,
            "only_available": only_available,
            "seat": seat,
            "availability": availability,
            "capacity": capacity,
            "open_already": open_already,
            "owner": owner,
        },
        to,
        says,
        told,
        id=f"{mode}-{'only-available' if only_available else 'any'}-{seat}-{availability}"
        f"{'-cap' + str(capacity) if capacity is not None else ''}{'' if owner else '-no-owner'}",
    )


TABLE = [
    # Specific users and teams (D3, D4, D5, D7).
    row(
        SPECIFIC,
        True,
        PAID,
        AVAILABLE,
        to="ada",
        says="Assigned to Ada Lovelace: available, 0 open, the only candidate",
        told=False,
    ),
    row(
        SPECIFIC,
        True,
        PAID,
        AWAY,
        to=None,
        says="Left unassigned: nobody on the list is eligible · Ada Lovelace away",
        told=False,
    ),
    row(
        SPECIFIC,
        False,
        PAID,
        AWAY,
        to="ada",
        says="Assigned to Ada Lovelace: away, 0 open, the only candidate",
        told=False,
    ),
    row(
        SPECIFIC,
        True,
        FREE,
        AVAILABLE,
        to=None,
        says="Left unassigned: nobody on the list is eligible · Ada Lovelace free seat",
        told=False,
    ),
    row(
        SPECIFIC,
        False,
        FREE,
        AWAY,
        to=None,
        says="Left unassigned: nobody on the list is eligible · Ada Lovelace free seat",
        told=False,
    ),
    row(
        SPECIFIC,
        True,
        PAID,
        AVAILABLE,
        capacity=2,
        open_already=2,
        to=None,
        says="Left unassigned: nobody on the list is eligible · Ada Lovelace at capacity (2 open, limit 2)",
        told=False,
    ),
    row(
        SPECIFIC,
        True,
        PAID,
        AVAILABLE,
        capacity=2,
        open_already=1,
        to="ada",
        says="Assigned to Ada Lovelace: available, 1 open, the only candidate",
        told=False,
    ),
    # Contact owner (D6).
    row(
        OWNER,
        True,
        PAID,
        AVAILABLE,
        to="ada",
        says="Assigned to Ada Lovelace, the contact owner: 0 open.",
        told=False,
    ),
    row(
        OWNER,
        True,
        PAID,
        AWAY,
        to=None,
        says=(
            "Left unassigned: the contact owner Ada Lovelace is away; "
            "Ada Lovelace is emailed about the new message."
        ),
        told=True,
    ),
    row(
        OWNER,
        False,
        PAID,
        AWAY,
        to="ada",
        says="Assigned to Ada Lovelace, the contact owner (away: emailed about the new message): 0 open.",
        told=True,
    ),
    row(
        OWNER,
        True,
        FREE,
        AVAILABLE,
        to=None,
        says="Left unassigned: the contact owner Ada Lovelace is on a free seat.",
        told=False,
    ),
    row(
        OWNER,
        False,
        FREE,
        AWAY,
        to=None,
        says="Left unassigned: the contact owner Ada Lovelace is on a free seat.",
        told=False,
    ),
    row(
        OWNER,
        True,
        PAID,
        AVAILABLE,
        capacity=1,
        open_already=1,
        to=None,
        says="Left unassigned: the contact owner Ada Lovelace is at capacity (1 open, limit 1).",
        told=False,
    ),
    row(
        OWNER,
        True,
        PAID,
        AVAILABLE,
        owner=False,
        to=None,
        says="Left unassigned: Carol Customer has no owner.",
        told=False,
    ),
]


def send(server, to: str, *, subject: str = "Where is my order?") -> None:
    with smtplib.SMTP(server.hostname, server.port, timeout=10) as client:
        message = f"From: Carol Customer <{SENDER}>\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nHello\r\n"
        client.sendmail(SENDER, [to], message.encode())


@pytest.mark.parametrize(("case", "to", "says", "told"), TABLE)
def test_each_row_of_the_decision_table(smtp_server, mailoutbox, case, to, says, told):  # noqa: F811
    admin = make_account("alpha")
    account = admin.account
    ada = MembershipFactory(
        account=account, user__full_name="Ada Lovelace", seat=case["seat"], availability=case["availability"]
    )
    with scopes_disabled():
        inbox = account.inboxes.get(is_default=True)
        address = inbox.channels.get().fallback_address.address
        rule = AssignmentRule.objects.create(
            account=account,
            inbox=inbox,
            enabled=True,
            assign_to=case["mode"],
            only_available=case["only_available"],
            capacity=case["capacity"],
        )
        if case["mode"] == SPECIFIC:
            rule.members.add(ada)
        contact = Contact.objects.create(
            account=account, email=SENDER, name="Carol Customer", owner=ada if case["owner"] else None
        )
        for n in range(case["open_already"]):
            Conversation.objects.create(
                account=account, inbox=inbox, contact=contact, assignee=ada, subject=f"Old {n}"
            )

    send(smtp_server, address)

    with scopes_disabled():
        conversation = Conversation.objects.get(account=account, subject="Where is my order?")
        decision = AssignmentDecision.objects.get(conversation=conversation)
        notified = list(
            OutboundEmail.objects.filter(
                account=account, kind="owner_notification", state="sent"
            ).values_list("to", flat=True)
        )
    assert (conversation.assignee_id, decision.chosen_id) == ((ada.pk, ada.pk) if to else (None, None))
    assert decision.summary == says
    # D6: the away owner's notification left through the outbound path (the task, the mail backend).
    assert notified == ([ada.user.email] if told else [])
    # Issue 17: Ada never signed in, so a conversation given to her is mailed to her as well, unless
    # D6's mail already told her (one mail per assignment).
    assigned_mail = bool(to) and not told
    assert [m.to for m in mailoutbox] == ([[ada.user.email]] if told or assigned_mail else [])
    if told:
        assert mailoutbox[0].subject == "New message from Carol Customer: Where is my order?"
    if assigned_mail:
        assert mailoutbox[0].subject == "Assigned to you: Where is my order?"
