"""Old messages give up their stored search vector and are found and ranked as before (issue 18 point 4).

PostgreSQL only: SQLite stores no vectors.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_scopes import scope

from inboxes.search import STORED_VECTOR_DAYS, Filters, forget_old_vectors, search_conversations
from inboxes.tasks import forget_old_search_vectors_task
from tests.inboxes.helpers import listed_conversation

pytestmark = pytest.mark.django_db

QUERIES = ("kettle", '"tracking link"', "kettle -broken", "refund or tracking", "carol", "zyzzyva")


def seen(member, inbox, text: str) -> tuple[int, list[tuple[int, str]]]:
    """What the search page would list: how many, and each conversation with its snippet, in order."""
    with scope(account=member.account):
        results = search_conversations(member, text, Filters(inbox_ids=[inbox.pk]))
    return results.total, [(hit.conversation.pk, str(hit.snippet)) for hit in results.hits]


def stored_vectors(inbox) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM inboxes_message WHERE inbox_id = %s AND search_vector IS NOT NULL",
            [inbox.pk],
        )
        return cursor.fetchone()[0]


def days_ago(days: int):
    return timezone.now() - timedelta(days=days)


@pytest.fixture
def mailbox(inbox):
    """Old and recent conversations whose words rank them differently."""
    old = days_ago(STORED_VECTOR_DAYS + 10)
    listed_conversation(inbox, "Refund for a kettle", text="The kettle is broken.", at=old)
    listed_conversation(inbox, "Question", text="kettle kettle kettle, and the tracking link", at=old)
    listed_conversation(inbox, "Order", text="Where is my kettle? The tracking link is dead.", at=days_ago(2))
    listed_conversation(inbox, "Hello", text="Is the kettle in stock?", at=days_ago(STORED_VECTOR_DAYS + 90))
    listed_conversation(inbox, "Refund", text="Please refund me.", email="dan@customer.example", at=old)
    return inbox


def test_old_messages_are_found_and_ranked_as_before_their_vectors_are_forgotten(admin, mailbox):
    before = {query: seen(admin, mailbox, query) for query in QUERIES}

    forgotten = forget_old_vectors()

    assert forgotten == 4
    assert {query: seen(admin, mailbox, query) for query in QUERIES} == before
    assert before["kettle"][0] == 4
    assert before['"tracking link"'][0] == 2


def test_recent_messages_keep_their_stored_vectors(admin, mailbox):
    forget_old_vectors()

    assert stored_vectors(mailbox) == 1
    assert forget_old_vectors() == 0


def test_a_message_received_after_the_forgetting_is_found_with_the_old_ones(admin, mailbox):
    forget_old_vectors()
    new = listed_conversation(mailbox, "Kettle again", text="A second kettle, also broken.")

    total, hits = seen(admin, mailbox, "kettle broken")

    assert total == 2
    assert new.pk in [pk for pk, _ in hits]


def test_the_forgetting_goes_in_batches_until_none_is_left(admin, mailbox):
    assert forget_old_vectors(batch=1) == 4
    assert stored_vectors(mailbox) == 1


def test_a_run_out_of_time_stops_after_its_batch_and_the_next_goes_on(admin, mailbox):
    assert forget_old_vectors(batch=1, budget_seconds=0) == 1
    assert forget_old_vectors(batch=2, budget_seconds=0) == 2
    assert forget_old_vectors() == 1
    assert stored_vectors(mailbox) == 1


def test_the_forgetting_runs_on_the_beat_schedule(admin, mailbox):
    scheduled = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert scheduled[forget_old_search_vectors_task.name] == 3600.0
    assert forget_old_search_vectors_task.apply().result == 4
