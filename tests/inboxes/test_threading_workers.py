"""Threads under real parallel Celery worker processes on PostgreSQL (G3, G4).

1,200 messages in 300 threads are spooled in shuffled order, so replies are
often processed before their parents and beside them in other processes;
some replies name only their parent (no References), the case that needs a
merge. Exactly one conversation per thread, no message lost or doubled.
"""

import random
from collections import defaultdict

import pytest
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from channels_conn.spool import SWEEP_BATCH
from inboxes.models import Conversation, Message
from tests.channels_conn.test_faults_workers import broker, celery_worker, sweep, wait_until  # noqa: F401
from tests.factories import make_account

pytestmark = pytest.mark.xdist_group("processes")

THREADS = 300
PER_THREAD = 4


def thread_mails(address: str, thread: int) -> list[bytes]:
    """A root and its chain of replies; odd threads' replies carry In-Reply-To only."""
    mails, ids = [], []
    for n in range(PER_THREAD):
        message_id = f"t{thread}-m{n}@customer.example"
        headers = [f"Message-ID: <{message_id}>"]
        if ids:
            headers.append(f"In-Reply-To: <{ids[-1]}>")
            if thread % 2 == 0:
                headers.append("References: " + " ".join(f"<{i}>" for i in ids))
        subject = f"{'Re: ' if ids else ''}Order {thread}"
        mails.append(
            (
                f"From: Customer {thread} <customer{thread}@example.net>\r\nTo: {address}\r\n"
                f"Subject: {subject}\r\n"
                + "\r\n".join(headers)
                + f"\r\n\r\nMessage {n} of thread {thread}\r\n"
            ).encode()
        )
        ids.append(message_id)
    return mails


@pytest.fixture
def account_and_inbox(transactional_db):
    admin = make_account("alpha")
    with scopes_disabled():
        inbox = admin.account.inboxes.get(is_default=True)
        address = inbox.channels.get().fallback_address.address
    return admin.account, inbox, address


def processed() -> int:
    return InboundMessage.objects.filter(state=InboundMessage.State.PROCESSED).count()


def test_four_processes_keep_every_thread_in_one_conversation(account_and_inbox, broker, tmp_path):  # noqa: F811
    account, inbox, address = account_and_inbox
    mails = [mail for thread in range(THREADS) for mail in thread_mails(address, thread)]
    random.Random(7).shuffle(mails)
    InboundMessage.objects.bulk_create(
        InboundMessage(account=account, raw=raw, size=len(raw), rcpt_tos=[address]) for raw in mails
    )
    total = THREADS * PER_THREAD
    with celery_worker(tmp_path, broker, name="threads", concurrency=4, INGEST_BATCH_SIZE="2") as worker:
        # Each sweep hands out at most SWEEP_BATCH rows, in spool (shuffled) order.
        for done in range(SWEEP_BATCH, total + SWEEP_BATCH, SWEEP_BATCH):
            sweep(broker, INGEST_BATCH_SIZE="2")
            expected = min(done, total)
            wait_until(
                lambda expected=expected: processed() >= expected,
                timeout=120,
                what="messages processed",
                log=worker.log,
            )

    with scopes_disabled():
        rows = list(Message.objects.filter(inbox=inbox).values_list("message_id", "conversation_id"))
        conversations = Conversation.objects.filter(inbox=inbox).count()
    by_thread = defaultdict(set)
    for message_id, conversation_id in rows:
        by_thread[message_id.split("-")[0]].add(conversation_id)
    split = {thread: ids for thread, ids in by_thread.items() if len(ids) > 1}
    assert len(rows) == total  # none lost, none doubled
    assert not split, f"{len(split)} threads split"
    assert conversations == THREADS
    assert len({ids.pop() for ids in by_thread.values()}) == THREADS  # none merged with another thread
