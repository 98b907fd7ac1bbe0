"""Actions that read, then write, answered at the same time from separate connections (H4, B7, D9).

Each caller runs in its own thread with its own PostgreSQL connection and all are released together,
as two agents clicking at once on two web workers.
"""

from collections.abc import Callable

import pytest
from django_scopes import scopes_disabled

from inboxes.models import Contact, Conversation, ConversationEvent
from inboxes.services import assign_conversation
from inboxhub.models import AvailabilityChange, Membership
from inboxhub.services import set_availability
from tests.concurrency import at_once
from tests.factories import MembershipFactory, make_account


def answers_at_once(*calls: Callable[[], str]) -> list[str]:
    """What each call answered, or the refusal it met, sorted."""
    outcomes = at_once(*(scopes_disabled()(call) for call in calls))
    return sorted(
        outcome if isinstance(outcome, str) else " ".join(getattr(outcome, "messages", [repr(outcome)]))
        for outcome in outcomes
    )


@pytest.fixture
def admin(transactional_db) -> Membership:
    return make_account("alpha")


@pytest.fixture
def conversation(admin) -> Conversation:
    with scopes_disabled():
        inbox = admin.account.inboxes.get(is_default=True)
        contact = Contact.objects.create(account=admin.account, email="carol@customer.example")
        return Conversation.objects.create(
            account=admin.account, inbox=inbox, contact=contact, subject="Help"
        )


def free_member(admin, name: str) -> Membership:
    return MembershipFactory(
        account=admin.account, user__full_name=name, username=name.lower(), seat=Membership.Seat.FREE
    )


def take(conversation: Conversation, member_id: int) -> Callable[[], str]:
    def call() -> str:
        member = Membership.objects.select_related("user", "account").get(pk=member_id)
        assign_conversation(conversation, member, by=member)
        return f"{member.user.full_name} took it"

    return call


def test_two_free_seats_taking_one_conversation_at_once_leave_one_assignee(admin, conversation):
    fay, gil = free_member(admin, "Fay"), free_member(admin, "Gil")

    outcomes = answers_at_once(take(conversation, fay.pk), take(conversation, gil.pk))

    with scopes_disabled():
        assignee = Conversation.objects.get(pk=conversation.pk).assignee
        events = list(
            ConversationEvent.objects.filter(conversation=conversation).values_list("kind", flat=True)
        )
    winner, loser = (fay, gil) if assignee == fay else (gil, fay)
    assert f"{winner.user.full_name} took it" in outcomes
    refusal = next(outcome for outcome in outcomes if "took it" not in outcome)
    # B7 read the assignee in force: the second free seat may not take it from the first.
    assert winner.user.full_name in refusal, refusal
    assert events == ["assigned"]
    assert loser != assignee


def test_two_paid_agents_taking_at_once_leave_one_assignee_and_a_true_trail(admin, conversation):
    ada = MembershipFactory(account=admin.account, user__full_name="Ada", username="ada")
    ben = MembershipFactory(account=admin.account, user__full_name="Ben", username="ben")

    outcomes = answers_at_once(take(conversation, ada.pk), take(conversation, ben.pk))

    assert outcomes == ["Ada took it", "Ben took it"]
    with scopes_disabled():
        assignee = Conversation.objects.get(pk=conversation.pk).assignee
        trail = list(ConversationEvent.objects.filter(conversation=conversation).order_by("pk"))
    # The second one reassigned from the first: the trail names the real previous assignee.
    first, second = trail
    assert first.details["previous"] == ""
    assert second.details["previous"] == first.details["assignee"]
    assert second.details["assignee"] == assignee.user.full_name


def test_the_same_availability_set_twice_at_once_is_one_change(admin):
    ada = MembershipFactory(account=admin.account, user__full_name="Ada", username="ada")

    def away() -> str:
        member = Membership.objects.get(pk=ada.pk)
        return set_availability(member, "away", by=member).availability

    outcomes = answers_at_once(away, away, away)

    assert outcomes == ["away"] * 3
    with scopes_disabled():
        assert list(AvailabilityChange.objects.filter(member=ada).values_list("availability", flat=True)) == [
            "away"
        ]
