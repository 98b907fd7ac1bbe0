"""The durable spool's services: commit, sweep, retry and counts (G2, G5)."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from django_scopes import scope
from kombu.exceptions import OperationalError as BrokerError

from channels_conn.models import FallbackAddress, InboundMessage
from channels_conn.spool import (
    claim_inbound,
    describe_error,
    ingest_counts,
    mark_processed,
    retry_inbound,
    store_inbound,
    sweep_inbound,
)
from ingest.tasks import process_inbound_batch

State = InboundMessage.State
RAW = b"From: dana@customer.example\r\nSubject: Hi\r\n\r\nHello\r\n"


def spooled(*, age: timedelta = timedelta(minutes=2), **fields) -> InboundMessage:
    fields.setdefault("rcpt_tos", ["support@alpha.inbox.localhost"])
    return InboundMessage.objects.create(raw=RAW, size=len(RAW), received_at=timezone.now() - age, **fields)


def store(**envelope) -> InboundMessage:
    envelope = {
        "mail_from": "dana@customer.example",
        "rcpt_tos": ["support@alpha.inbox.localhost"],
    } | envelope
    (row,) = store_inbound(raw=RAW, peer_ip="192.0.2.7", helo="mx.customer.example", **envelope)
    return row


def fallback_of(member) -> str:
    with scope(account=member.account):
        return FallbackAddress.objects.get(account=member.account, channel__inbox__is_default=True).address


def test_a_row_is_keyed_to_the_account_its_recipient_names(transactional_db, ingest_stand_in, admin):
    inbound = store(rcpt_tos=[fallback_of(admin).upper()])
    assert InboundMessage.objects.get(pk=inbound.pk).account_id == admin.account_id


def test_recipients_of_two_accounts_make_a_row_for_each_with_its_own_recipients(
    transactional_db, ingest_stand_in, admin, outsider
):
    ours, theirs = fallback_of(admin), fallback_of(outsider)
    rows = store_inbound(
        raw=RAW, mail_from="dana@customer.example", rcpt_tos=[ours, theirs], peer_ip=None, helo=""
    )
    stored = InboundMessage.objects.filter(pk__in=[row.pk for row in rows]).order_by("pk")
    assert [(row.account_id, row.rcpt_tos, bytes(row.raw)) for row in stored] == [
        (admin.account_id, [ours], RAW),
        (outsider.account_id, [theirs], RAW),
    ]
    assert sorted(ingest_stand_in.calls) == sorted(row.pk for row in rows)


def test_a_recipient_no_account_knows_leaves_the_row_without_one(transactional_db, ingest_stand_in):
    assert InboundMessage.objects.get(pk=store().pk).account_id is None


def test_store_inbound_commits_the_raw_message_and_envelope(transactional_db, ingest_stand_in):
    inbound = store()
    inbound = InboundMessage.objects.get(pk=inbound.pk)
    assert bytes(inbound.raw) == RAW and inbound.size == len(RAW)
    assert inbound.mail_from == "dana@customer.example"
    assert inbound.rcpt_tos == ["support@alpha.inbox.localhost"]
    assert (inbound.peer_ip, inbound.helo) == ("192.0.2.7", "mx.customer.example")


def test_store_inbound_hands_only_the_row_id_to_processing(transactional_db, ingest_stand_in):
    inbound = store()
    assert ingest_stand_in.calls == [inbound.pk]
    inbound.refresh_from_db()
    assert inbound.state == State.PROCESSED


def test_store_inbound_keeps_the_row_when_the_broker_refuses_the_task(
    transactional_db, ingest_stand_in, monkeypatch
):
    def broker_down(*args, **kwargs):
        raise BrokerError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(process_inbound_batch, "apply_async", broker_down)
    inbound = store()
    inbound.refresh_from_db()
    assert (inbound.state, inbound.attempts) == (State.RECEIVED, 0)


def test_store_inbound_refuses_to_run_inside_another_transaction(transactional_db):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        store()
    assert not InboundMessage.objects.exists()


def test_the_sweep_enqueues_a_received_row_older_than_a_minute(transactional_db, ingest_stand_in):
    inbound = spooled()
    assert sweep_inbound() == 1
    assert ingest_stand_in.calls == [inbound.pk]


def test_the_sweep_leaves_a_row_received_less_than_a_minute_ago(transactional_db, ingest_stand_in):
    spooled(age=timedelta(seconds=20))
    assert sweep_inbound() == 0
    assert ingest_stand_in.calls == []


def test_the_sweep_leaves_processed_and_failed_rows_alone(transactional_db, ingest_stand_in):
    spooled(state=State.PROCESSED, attempts=1)
    spooled(state=State.FAILED, attempts=5)
    assert sweep_inbound() == 0


def test_the_sweep_takes_over_a_claim_older_than_the_task_time_limit(transactional_db, ingest_stand_in):
    dead = spooled(state=State.PROCESSING, attempts=1, claimed_at=timezone.now() - timedelta(minutes=5))
    spooled(state=State.PROCESSING, attempts=1, claimed_at=timezone.now() - timedelta(seconds=10))
    assert sweep_inbound() == 1
    dead.refresh_from_db()
    assert (ingest_stand_in.calls, dead.state, dead.attempts) == ([dead.pk], State.PROCESSED, 2)


def test_the_sweep_waits_out_the_backoff_after_a_failed_attempt(transactional_db, ingest_stand_in):
    spooled(attempts=2, claimed_at=timezone.now() - timedelta(seconds=90))
    due = spooled(attempts=2, claimed_at=timezone.now() - timedelta(seconds=150))
    assert sweep_inbound() == 1
    assert ingest_stand_in.calls == [due.pk]


def test_the_sweep_fails_a_row_whose_worker_died_on_every_attempt(
    transactional_db, ingest_stand_in, settings
):
    settings.INGEST_MAX_ATTEMPTS = 3
    poison = spooled(state=State.PROCESSING, attempts=3, claimed_at=timezone.now() - timedelta(minutes=5))
    assert sweep_inbound() == 0
    poison.refresh_from_db()
    assert poison.state == State.FAILED
    assert poison.error == "Gave up after 3 attempts: the worker died mid-task each time."


def test_the_sweep_stops_at_the_first_enqueue_failure_and_keeps_the_rows(
    transactional_db, ingest_stand_in, monkeypatch, settings
):
    settings.INGEST_BATCH_SIZE = 1
    first, second, third = spooled(), spooled(), spooled()
    real_apply_async = process_inbound_batch.apply_async

    def broker_gone_after_the_first(args, kwargs=None, **options):
        if args[0] != [first.pk]:
            raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return real_apply_async(args, kwargs, **options)

    monkeypatch.setattr(process_inbound_batch, "apply_async", broker_gone_after_the_first)
    assert sweep_inbound() == 1
    assert ingest_stand_in.calls == [first.pk]
    assert set(
        InboundMessage.objects.filter(pk__in=[second.pk, third.pk]).values_list("state", flat=True)
    ) == {State.RECEIVED}


def test_retry_puts_a_failed_row_back_with_fresh_attempts_and_processes_it(transactional_db, ingest_stand_in):
    failed = spooled(state=State.FAILED, attempts=5, error="ValueError: bad", claimed_at=timezone.now())
    assert retry_inbound(failed) is True
    failed.refresh_from_db()
    assert (failed.state, failed.attempts, failed.error) == (State.PROCESSED, 1, "")
    assert ingest_stand_in.calls == [failed.pk]


def test_retry_leaves_a_row_that_is_not_failed(transactional_db, ingest_stand_in):
    processed = spooled(state=State.PROCESSED, attempts=1)
    assert retry_inbound(processed) is False
    assert ingest_stand_in.calls == []


def test_ingest_counts_counts_each_state_and_pending_rows_older_than_a_minute(transactional_db):
    spooled()
    spooled(age=timedelta(seconds=5))
    spooled(state=State.PROCESSING, claimed_at=timezone.now())
    spooled(state=State.PROCESSED)
    spooled(state=State.FAILED)
    assert ingest_counts() == {"received": 2, "processing": 1, "processed": 1, "failed": 1, "pending": 2}


def test_ingest_status_json_prints_the_counts(transactional_db, capsys):
    spooled(state=State.FAILED)
    call_command("ingest_status", "--json")
    assert json.loads(capsys.readouterr().out) == {
        "received": 0,
        "processing": 0,
        "processed": 0,
        "failed": 1,
        "pending": 0,
    }


def test_sweep_inbound_command_reports_what_it_enqueued(transactional_db, ingest_stand_in, capsys):
    spooled()
    call_command("sweep_inbound")
    assert capsys.readouterr().out == "Re-enqueued 1 inbound message(s).\n"


def test_an_error_text_never_carries_url_credentials():
    error = ConnectionError("cannot reach redis://worker:s3cret@10.0.0.5:6379/0")
    assert describe_error(error) == "ConnectionError: cannot reach redis://worker:***@10.0.0.5:6379/0"


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL setting")
def test_the_worker_s_claim_and_processed_mark_commit_without_waiting_for_disk_and_only_they(
    transactional_db,
):
    inbound = spooled()
    assert _synchronous_commit() == "on"
    with transaction.atomic():
        claimed = claim_inbound(inbound.pk, timezone.now())
        assert claimed.pk == inbound.pk and claimed.state == State.PROCESSING and claimed.attempts == 1
        assert _synchronous_commit() == "off"
    assert _synchronous_commit() == "on"  # for that transaction only
    with transaction.atomic():
        mark_processed(claimed)
        assert _synchronous_commit() == "off"
    assert _synchronous_commit() == "on"
    assert InboundMessage.objects.get(pk=inbound.pk).state == State.PROCESSED
    # A row that is not ours is neither claimed nor marked.
    assert claim_inbound(inbound.pk, timezone.now()) is None
