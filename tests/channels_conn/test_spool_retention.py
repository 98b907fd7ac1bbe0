"""Spool retention (issue 18 point 4): raw mail of processed messages is deleted after
SPOOL_RETENTION_DAYS, the conversation keeps everything it shows, unprocessed and failed mail stays;
`manage.py storage` reports what each account stores."""

import io
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from channels_conn.spool import prune_spool
from inboxes.models import Message
from ingest.pipeline import process_inbound_message
from ingest.tasks import prune_spool_task
from tests.inboxes.helpers import address_of, default_inbox, raw_mail, spool

pytestmark = pytest.mark.django_db
State = InboundMessage.State


@pytest.fixture
def inbox(admin):
    return default_inbox(admin.account)


def received(inbox, n: int, *, days_ago: float, state=None) -> InboundMessage:
    """A message spooled `days_ago`, processed into a conversation unless `state` says otherwise."""
    to = address_of(inbox)
    row = spool(raw_mail(to=to, subject=f"Mail {n}", message_id=f"<r{n}@customer.example>"), to)
    if state is None:
        assert process_inbound_message(row.pk) == State.PROCESSED
    else:
        InboundMessage.objects.filter(pk=row.pk).update(state=state)
    InboundMessage.objects.filter(pk=row.pk).update(received_at=timezone.now() - timedelta(days=days_ago))
    return row


def test_processed_mail_past_the_retention_goes_and_its_message_stays_whole(inbox, settings):
    settings.SPOOL_RETENTION_DAYS = 30
    old = received(inbox, 1, days_ago=31)
    recent = received(inbox, 2, days_ago=29)
    waiting = received(inbox, 3, days_ago=90, state=State.RECEIVED)
    failed = received(inbox, 4, days_ago=90, state=State.FAILED)

    assert prune_spool_task.apply().result == 1

    left = set(InboundMessage.objects.values_list("pk", flat=True))
    assert left == {recent.pk, waiting.pk, failed.pk} and old.pk not in left
    with scopes_disabled():
        message = Message.objects.get(subject="Mail 1")
    assert message.inbound_id is None
    assert "my order has not arrived" in message.text and message.conversation.subject == "Mail 1"


def test_a_retention_of_zero_keeps_the_spool_for_ever(inbox, settings):
    settings.SPOOL_RETENTION_DAYS = 0
    kept = received(inbox, 1, days_ago=3650)

    assert prune_spool() == 0
    assert InboundMessage.objects.filter(pk=kept.pk).exists()


def test_pruning_works_through_a_long_backlog_in_batches(inbox):
    for n in range(5):
        received(inbox, n, days_ago=40)

    assert prune_spool(retention_days=30, batch=2) == 5
    assert not InboundMessage.objects.exists()


def test_the_prune_runs_on_the_beat_schedule():
    assert prune_spool_task.name in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}


def test_storage_reports_each_accounts_spool_messages_and_files(admin, inbox, outsider):
    received(inbox, 1, days_ago=1)
    received(inbox, 2, days_ago=1)
    out = io.StringIO()

    call_command("storage", "--json", stdout=out)

    report = json.loads(out.getvalue())
    alpha, bravo = (row for row in report["accounts"] if row["account"] in ("alpha", "bravo"))
    assert (alpha["spool_rows"], alpha["messages"]) == (2, 2)
    assert alpha["spool_bytes"] > 0 and alpha["text_bytes"] > 0
    assert (bravo["spool_rows"], bravo["messages"], bravo["attachments"]) == (0, 0, 0)
    assert report["database_bytes"] > 0
    table = io.StringIO()
    call_command("storage", stdout=table)
    assert "alpha" in table.getvalue() and "database:" in table.getvalue()
