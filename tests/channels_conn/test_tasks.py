"""process_inbound: claim by conditional update, bounded attempts, poison rows never loop (G3, G5, F7)."""

from datetime import timedelta

import psycopg
from django.db import connection
from django.utils import timezone
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from ingest.tasks import process_inbound, process_inbound_batch, sweep_inbound_task

State = InboundMessage.State
RAW = b"From: dana@customer.example\r\nSubject: Hi\r\n\r\nHello\r\n"


def spooled(**fields) -> InboundMessage:
    return InboundMessage.objects.create(raw=RAW, size=len(RAW), **fields)


def test_it_processes_a_received_row_once_and_marks_it_processed(transactional_db, ingest_stand_in):
    inbound = spooled()
    assert process_inbound(inbound.pk) == State.PROCESSED
    inbound.refresh_from_db()
    assert (inbound.state, inbound.attempts, inbound.error) == (State.PROCESSED, 1, "")
    assert inbound.processed_at is not None
    assert ingest_stand_in.calls == [inbound.pk]


def test_a_second_delivery_of_the_task_is_a_no_op(transactional_db, ingest_stand_in):
    inbound = spooled()
    process_inbound(inbound.pk)
    assert process_inbound(inbound.pk) == "skipped"
    assert ingest_stand_in.calls == [inbound.pk]


def test_a_row_another_worker_is_processing_is_skipped(transactional_db, ingest_stand_in):
    inbound = spooled(state=State.PROCESSING, attempts=1, claimed_at=timezone.now())
    assert process_inbound(inbound.pk) == "skipped"
    assert ingest_stand_in.calls == []


def test_a_claim_older_than_the_time_limit_is_taken_over(transactional_db, ingest_stand_in):
    inbound = spooled(state=State.PROCESSING, attempts=1, claimed_at=timezone.now() - timedelta(minutes=5))
    assert process_inbound(inbound.pk) == State.PROCESSED
    inbound.refresh_from_db()
    assert inbound.attempts == 2


def test_a_failure_keeps_the_reason_and_returns_the_row_for_a_later_retry(transactional_db, ingest_stand_in):
    ingest_stand_in.failure = ValueError("no boundary in multipart/mixed")
    inbound = spooled()
    assert process_inbound(inbound.pk) == State.RECEIVED
    inbound.refresh_from_db()
    assert (inbound.state, inbound.attempts) == (State.RECEIVED, 1)
    assert inbound.error == "ValueError: no boundary in multipart/mixed"
    assert inbound.processed_at is None


def test_the_last_allowed_attempt_failing_marks_the_row_failed(transactional_db, ingest_stand_in, settings):
    settings.INGEST_MAX_ATTEMPTS = 2
    ingest_stand_in.failure = ValueError("still broken")
    inbound = spooled(attempts=1)
    assert process_inbound(inbound.pk) == State.FAILED
    inbound.refresh_from_db()
    assert (inbound.state, inbound.attempts, inbound.error) == (State.FAILED, 2, "ValueError: still broken")


def test_a_failed_row_is_never_picked_up_again_by_the_task(transactional_db, ingest_stand_in):
    inbound = spooled(state=State.FAILED, attempts=5)
    assert process_inbound(inbound.pk) == "skipped"
    assert ingest_stand_in.calls == []


def test_a_poison_row_ends_failed_while_the_others_are_processed(transactional_db, ingest_stand_in, settings):
    settings.INGEST_MAX_ATTEMPTS = 3
    long_ago = timezone.now() - timedelta(hours=1)
    poison = spooled(received_at=long_ago)
    healthy = [spooled(received_at=long_ago) for _ in range(3)]

    ingest_stand_in.failure = RecursionError("maximum recursion depth exceeded")
    ingest_stand_in.failing_ids = {poison.pk}
    for _ in range(5):
        # Each round is a sweep after the backoff: pretend the last attempt was long ago.
        InboundMessage.objects.filter(state=State.RECEIVED).update(claimed_at=long_ago)
        sweep_inbound_task()
    poison.refresh_from_db()
    assert (poison.state, poison.attempts) == (State.FAILED, 3)
    assert ingest_stand_in.calls.count(poison.pk) == 3
    assert {row.state for row in InboundMessage.objects.filter(pk__in=[r.pk for r in healthy])} == {
        State.PROCESSED
    }


def test_a_batch_processes_each_message_on_its_own(transactional_db, ingest_stand_in):
    first, broken, last = spooled(), spooled(), spooled()
    ingest_stand_in.failure = ValueError("no boundary in multipart/mixed")
    ingest_stand_in.failing_ids = {broken.pk}
    assert process_inbound_batch([first.pk, broken.pk, last.pk]) == {
        str(first.pk): State.PROCESSED,
        str(broken.pk): State.RECEIVED,
        str(last.pk): State.PROCESSED,
    }
    broken.refresh_from_db()
    assert broken.error == "ValueError: no boundary in multipart/mixed"


def test_a_batch_past_its_time_budget_queues_the_rest_again(transactional_db, ingest_stand_in, settings):
    settings.INGEST_BATCH_SECONDS = 0
    rows = [spooled() for _ in range(3)]
    outcome = process_inbound_batch([row.pk for row in rows])
    assert outcome == {
        str(rows[0].pk): State.PROCESSED,
        **dict.fromkeys([str(r.pk) for r in rows[1:]], "requeued"),
    }
    # Queued again (run at once here, as without a broker), each still exactly once.
    assert ingest_stand_in.calls == [row.pk for row in rows]
    assert set(InboundMessage.objects.values_list("state", flat=True)) == {State.PROCESSED}


def test_a_connection_the_database_dropped_between_tasks_is_replaced(transactional_db, ingest_stand_in):
    inbound = spooled()
    # What a PostgreSQL restart does to the worker's connection between two tasks.
    with psycopg.connect(**_admin_dsn()) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    assert process_inbound(inbound.pk) == State.PROCESSED
    inbound.refresh_from_db()
    assert (inbound.state, inbound.attempts) == (State.PROCESSED, 1)


def test_a_failed_ingest_leaves_the_claimed_attempt_and_nothing_of_its_work(transactional_db, monkeypatch):
    from inboxes.models import Contact
    from tests.factories import make_account

    account = make_account().account

    def half_done(inbound, lookups=None):
        Contact.objects.create(account=account, email="half@customer.example")
        raise ValueError("broken after the first write")

    monkeypatch.setattr("ingest.pipeline.ingest_inbound", half_done)
    inbound = spooled()
    assert process_inbound(inbound.pk) == State.RECEIVED
    inbound.refresh_from_db()
    assert (inbound.attempts, inbound.error) == (1, "ValueError: broken after the first write")
    with scopes_disabled():
        assert not Contact.objects.filter(email="half@customer.example").exists()


def _admin_dsn() -> dict:
    db = connection.settings_dict
    return {
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
        "user": db["USER"],
        "dbname": db["NAME"],
    }
