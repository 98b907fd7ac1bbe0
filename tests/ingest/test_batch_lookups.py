"""A batch of mail reads what its messages share once, and nothing of it outlives the batch (issue 18)."""

from ipaddress import ip_network

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope

from channels_conn.models import Channel, InboundMessage
from ingest.pipeline import process_inbound_batch
from tests.inboxes.helpers import address_of, default_inbox, messages_in, raw_mail, spool

pytestmark = pytest.mark.django_db
State = InboundMessage.State


@pytest.fixture(autouse=True)
def trusted_peer(settings, tmp_path):
    """The spool's peer (192.0.2.10) is trusted, as under `make run`: no DNS is asked."""
    settings.TRUSTED_NETWORKS = [ip_network("192.0.2.0/24")]
    settings.MEDIA_ROOT = tmp_path / "media"


def mails(to: str, count: int, *, first: int = 0) -> list[int]:
    return [
        spool(raw_mail(to=to, message_id=f"<batch{n}@customer.example>", subject=f"Order {n}"), to).pk
        for n in range(first, first + count)
    ]


def test_one_batch_with_mail_for_two_accounts_stores_each_in_its_own_accounts_inbox(admin, outsider):
    ours, theirs = address_of(default_inbox(admin.account)), address_of(default_inbox(outsider.account))
    ids = [*mails(ours, 2), *mails(theirs, 2, first=2), *mails(ours, 1, first=4)]

    outcomes = process_inbound_batch(ids)

    assert set(outcomes.values()) == {State.PROCESSED}
    assert [m.subject for m in messages_in(admin.account)] == ["Order 0", "Order 1", "Order 4"]
    assert [m.subject for m in messages_in(outsider.account)] == ["Order 2", "Order 3"]
    assert {m.conversation.contact.account_id for m in messages_in(outsider.account)} == {outsider.account_id}


def test_a_channel_turned_off_after_a_batch_refuses_the_next_batchs_mail(admin):
    inbox = default_inbox(admin.account)
    to = address_of(inbox)
    [first] = mails(to, 1)
    assert process_inbound_batch([first]) == {str(first): State.PROCESSED}
    with scope(account=admin.account):
        Channel.objects.filter(inbox=inbox).update(enabled=False)

    [later] = mails(to, 1, first=1)
    process_inbound_batch([later])

    row = InboundMessage.objects.get(pk=later)
    assert row.state == State.FAILED
    assert "was turned off after this message was accepted" in row.error
    assert [m.subject for m in messages_in(admin.account)] == ["Order 0"]


def test_a_batch_reads_the_recipient_members_and_ticket_defaults_once_for_all_its_messages(admin):
    to = address_of(default_inbox(admin.account))
    ids = mails(to, 5)

    with CaptureQueriesContext(connection) as queries:
        process_inbound_batch(ids)

    def reads(table: str) -> int:
        return sum(1 for q in queries if q["sql"].startswith("SELECT") and f'FROM "{table}"' in q["sql"])

    assert len(messages_in(admin.account)) == 5
    assert reads("channels_conn_fallbackaddress") == 1
    assert reads("inboxhub_membership") == 1
    assert reads("tickets_ticketdefaults") == 1
