"""Automatic assignment under real parallel Celery worker processes on PostgreSQL (D7).

400 new conversations arrive in shuffled order and four pool processes
route them at once among five eligible agents: none is assigned twice, the
open counts stay within one of each other, every decision is logged; an
agent set away mid-stream gets nothing after; two processes running the same
backlog hand each waiting conversation out once.
"""

import random
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from inboxes.models import Conversation
from inboxhub.models import Membership, OutboundEmail
from routing.models import AssignmentDecision, AssignmentRule
from tests.channels_conn.test_faults import BASE_DIR, child_env
from tests.channels_conn.test_faults_workers import broker, celery_worker, sweep, wait_until  # noqa: F401
from tests.factories import MembershipFactory, make_account

pytestmark = pytest.mark.xdist_group("processes")

MESSAGES = 400


def spool_new_conversations(account, address: str, count: int, *, start: int = 0) -> None:
    """`count` first messages from as many customers, committed with shuffled arrival times."""
    now = timezone.now()
    rows = []
    for n in range(start, start + count):
        raw = (
            f"From: Customer {n} <customer{n}@example.net>\r\nTo: {address}\r\nSubject: Order {n}\r\n"
            f"Message-ID: <order-{n}@example.net>\r\n\r\nWhere is order {n}?\r\n"
        ).encode()
        received_at = now - timedelta(seconds=600) + timedelta(milliseconds=random.randrange(300_000))
        rows.append(
            InboundMessage(
                account=account, raw=raw, size=len(raw), rcpt_tos=[address], received_at=received_at
            )
        )
    InboundMessage.objects.bulk_create(rows)


def processed() -> int:
    return InboundMessage.objects.filter(state=InboundMessage.State.PROCESSED).count()


def decided() -> int:
    """Conversations decided: assignment follows each row's commit, so it finishes a moment after."""
    with scopes_disabled():
        return AssignmentDecision.objects.values("conversation").distinct().count()


@pytest.fixture
def five_agents(transactional_db):
    admin = make_account("alpha")
    agents = [
        MembershipFactory(
            account=admin.account, user__full_name=f"Agent {n}", seat=Membership.Seat.SERVICE_HUB
        )
        for n in range(5)
    ]
    with scopes_disabled():
        inbox = admin.account.inboxes.get(is_default=True)
        address = inbox.channels.get().fallback_address.address
        rule = AssignmentRule.objects.create(account=admin.account, inbox=inbox, enabled=True)
        rule.members.set(agents)
    return admin.account, inbox, address, agents


def open_counts(inbox) -> Counter:
    with scopes_disabled():
        return Counter(
            Conversation.objects.filter(inbox=inbox, status="open").values_list("assignee_id", flat=True)
        )


def test_four_processes_assign_400_conversations_fairly_and_each_once(five_agents, broker, tmp_path):  # noqa: F811
    account, inbox, address, agents = five_agents
    spool_new_conversations(account, address, MESSAGES)
    with celery_worker(tmp_path, broker, name="routing", concurrency=4, INGEST_BATCH_SIZE="1") as worker:
        sweep(broker, INGEST_BATCH_SIZE="1")
        wait_until(
            lambda: processed() == MESSAGES and decided() == MESSAGES,
            timeout=180,
            what="400 messages processed and decided",
            log=worker.log,
        )

    with scopes_disabled():
        decisions = list(AssignmentDecision.objects.filter(inbox=inbox).values_list("conversation", "chosen"))
        conversations = Conversation.objects.filter(inbox=inbox).count()
    counts = open_counts(inbox)
    assert conversations == MESSAGES and len(decisions) == MESSAGES
    assert len({conversation for conversation, _ in decisions}) == MESSAGES  # none decided twice
    assert None not in counts and sum(counts.values()) == MESSAGES
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    assert set(counts) == {agent.pk for agent in agents}
    # Nobody is signed in: each assignment mails its assignee once, however the workers raced.
    with scopes_disabled():
        mails = list(
            OutboundEmail.objects.filter(kind=OutboundEmail.Kind.ASSIGNMENT_NOTIFICATION).values_list(
                "to", "body"
            )
        )
    emails = {agent.pk: agent.user.email for agent in agents}
    assert len(mails) == MESSAGES
    assert sorted(to for to, _ in mails) == sorted(emails[chosen] for _, chosen in decisions)
    assert len({body for _, body in mails}) == MESSAGES  # one per conversation, none twice


def test_an_agent_set_away_mid_stream_gets_nothing_after(five_agents, broker, tmp_path):  # noqa: F811
    account, inbox, address, agents = five_agents
    away = agents[0]
    spool_new_conversations(account, address, 100)
    with celery_worker(tmp_path, broker, name="routing", concurrency=4, INGEST_BATCH_SIZE="1") as worker:
        sweep(broker, INGEST_BATCH_SIZE="1")
        wait_until(lambda: processed() >= 50, timeout=120, what="half processed", log=worker.log)
        with scopes_disabled():
            Membership.objects.filter(pk=away.pk).update(availability=Membership.Availability.AWAY)
        changed_at = timezone.now()
        wait_until(
            lambda: processed() == 100 and decided() == 100, timeout=120, what="all decided", log=worker.log
        )

    with scopes_disabled():
        after = AssignmentDecision.objects.filter(inbox=inbox, created_at__gt=changed_at)
        assert after.exists()
        assert not after.filter(chosen=away).exists()
        assert all("Agent 0 away" in summary for summary in after.values_list("summary", flat=True))


def test_two_processes_running_the_same_backlog_hand_each_conversation_out_once(five_agents):
    account, inbox, address, agents = five_agents
    with scopes_disabled():
        Membership.objects.filter(pk__in=[a.pk for a in agents]).update(
            availability=Membership.Availability.AWAY
        )
        contact = inbox.account.contacts.create(email="waiting@example.net")
        waiting = [
            Conversation.objects.create(account=account, inbox=inbox, contact=contact, subject=f"Waiting {n}")
            for n in range(60)
        ]
        Membership.objects.filter(pk__in=[a.pk for a in agents]).update(
            availability=Membership.Availability.AVAILABLE
        )
    script = (
        "import django; django.setup()\n"
        "from django_scopes import scopes_disabled\n"
        "from inboxhub.models import Membership\n"
        "from routing.backlog import assign_backlog_for\n"
        f"with scopes_disabled(): print(assign_backlog_for(Membership.objects.get(pk={agents[0].pk})))\n"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script], cwd=BASE_DIR, env=child_env(), stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    assigned = [int(run.communicate(timeout=60)[0].strip().splitlines()[-1]) for run in runs]

    with scopes_disabled():
        decisions = list(
            AssignmentDecision.objects.filter(conversation__in=waiting).values_list("conversation", flat=True)
        )
    counts = open_counts(inbox)
    assert sum(assigned) == len(waiting) == len(decisions) == len(set(decisions))
    assert max(counts.values()) - min(counts.values()) <= 1, counts
