"""Failed messages: listed for admins of the recipient's account, retried on request (G5)."""

import pytest
from django.db import connection
from django.urls import reverse

from channels_conn.models import InboundMessage
from inboxes.selectors import failed_inbound_rows
from ingest.pipeline import process_inbound_message
from tests.inboxes.helpers import address_of, messages_in, raw_mail, spool

pytestmark = pytest.mark.django_db


def failed_row(inbox, *, subject="Cannot be read", error="ValueError: boom") -> InboundMessage:
    to = address_of(inbox)
    return spool(
        raw_mail(to=to, subject=subject), to, state=InboundMessage.State.FAILED, attempts=5, error=error
    )


def failed_url(account) -> str:
    return reverse("inboxes:failed", args=[account.subdomain])


def retry_url(account, inbound) -> str:
    return reverse("inboxes:retry_failed", args=[account.subdomain, inbound.pk])


def test_the_failed_page_lists_a_failed_message_with_its_error_sender_and_subject(client, admin, inbox):
    row = failed_row(inbox, subject="Invoice <b>42</b>", error="ValueError: The sender could not be read")
    client.force_login(admin.user)
    text = client.get(failed_url(admin.account)).text
    item = text.split(f'id="inbound-{row.pk}"')[1].split("</tr>")[0]
    assert "ValueError: The sender could not be read" in item
    assert "Invoice &lt;b&gt;42&lt;/b&gt;" in item
    assert "Carol Customer &lt;carol@customer.example&gt;" in item
    assert "Retry" in item


def test_a_message_whose_sender_cannot_be_read_fails_at_once_and_the_page_says_why(client, admin, inbox):
    to = address_of(inbox)
    inbound = spool(raw_mail(to=to, sender="alice@evil.example)<bob@customer.com>", subject="Odd From"), to)
    assert process_inbound_message(inbound.pk) == InboundMessage.State.FAILED
    inbound.refresh_from_db()
    assert inbound.attempts == 1  # retrying cannot make the From header readable
    client.force_login(admin.user)
    text = client.get(failed_url(admin.account)).text
    item = text.split(f'id="inbound-{inbound.pk}"')[1].split("</tr>")[0]
    assert "The sender could not be read unambiguously from the From header" in item
    assert "Odd From" in item and "Retry" in item


def test_the_failed_page_leaves_out_other_accounts_and_unfailed_rows(client, admin, inbox, other_inbox):
    theirs = failed_row(other_inbox, subject="Bravo secret")
    to = address_of(inbox)
    fine = spool(raw_mail(to=to, subject="Processed fine"), to, state=InboundMessage.State.PROCESSED)
    client.force_login(admin.user)
    text = client.get(failed_url(admin.account)).text
    assert "Bravo secret" not in text and f"inbound-{theirs.pk}" not in text
    assert f"inbound-{fine.pk}" not in text
    assert "No failed messages" in text


def test_retry_requeues_the_message_and_says_so(client, admin, inbox):
    row = failed_row(inbox)
    client.force_login(admin.user)
    r = client.post(retry_url(admin.account, row), follow=True)
    assert f"Message #{row.pk} is queued for another try." in r.text
    row.refresh_from_db()
    assert (row.state, row.attempts, row.error) == (InboundMessage.State.RECEIVED, 0, "")


def test_a_retried_message_is_processed_into_a_conversation(
    client, admin, inbox, django_capture_on_commit_callbacks
):
    row = failed_row(inbox, subject="Second time lucky")
    client.force_login(admin.user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(retry_url(admin.account, row))
    row.refresh_from_db()
    assert row.state == InboundMessage.State.PROCESSED
    [message] = messages_in(inbox.account)
    assert message.subject == "Second time lucky"


def test_retrying_a_message_that_is_no_longer_failed_says_so(client, admin, inbox):
    row = failed_row(inbox)
    InboundMessage.objects.filter(pk=row.pk).update(state=InboundMessage.State.PROCESSED)
    client.force_login(admin.user)
    r = client.post(retry_url(admin.account, row), follow=True)
    assert f"Message #{row.pk} is no longer marked failed; nothing to retry." in r.text


def test_an_agent_gets_403_on_the_failed_page(client, agent, inbox):
    client.force_login(agent.user)
    assert client.get(failed_url(agent.account)).status_code == 403


def test_an_agent_gets_403_on_retry_and_the_row_stays_failed(client, agent, inbox):
    row = failed_row(inbox)
    client.force_login(agent.user)
    assert client.post(retry_url(agent.account, row)).status_code == 403
    row.refresh_from_db()
    assert row.state == InboundMessage.State.FAILED


def test_an_outsider_gets_404_on_the_failed_page(client, outsider, inbox):
    client.force_login(outsider.user)
    assert client.get(failed_url(inbox.account)).status_code == 404


def test_an_outsider_gets_404_retrying_another_accounts_row_and_it_stays_failed(client, outsider, inbox):
    row = failed_row(inbox)
    client.force_login(outsider.user)
    assert client.post(retry_url(inbox.account, row)).status_code == 404
    assert client.post(retry_url(outsider.account, row)).status_code == 404
    row.refresh_from_db()
    assert row.state == InboundMessage.State.FAILED


def test_retry_needs_a_post(client, admin, inbox):
    row = failed_row(inbox)
    client.force_login(admin.user)
    assert client.get(retry_url(admin.account, row)).status_code == 405


def test_the_failed_page_costs_the_same_queries_however_many_rows_fail_here_or_elsewhere(
    client, admin, inbox, other_inbox, django_assert_num_queries
):
    client.force_login(admin.user)
    failed_row(inbox)
    client.get(failed_url(admin.account))  # warm the session and the member's caches
    with django_assert_num_queries(6) as first:
        client.get(failed_url(admin.account))
    for n in range(5):
        failed_row(inbox, subject=f"Ours {n}")
        failed_row(other_inbox, subject=f"Theirs {n}")
    with django_assert_num_queries(len(first.captured_queries)) as again:
        text = client.get(failed_url(admin.account)).text
    assert text.count('id="inbound-') == 6 and "Theirs" not in text
    spool_queries = [q["sql"] for q in again.captured_queries if "channels_conn_inboundmessage" in q["sql"]]
    assert len(spool_queries) == 1 and '"account_id" =' in spool_queries[0]


def test_the_failed_page_reads_one_accounts_failed_rows_through_their_index(admin, inbox):
    row = failed_row(inbox)
    # Like a real spool: the account's rows are mostly processed ones. With statistics to go by, the
    # planner's choice is the one production makes (on an unanalyzed table it may take the plain
    # account index as well).
    InboundMessage.objects.bulk_create(
        InboundMessage(
            account=admin.account, raw=row.raw, size=row.size, state=InboundMessage.State.PROCESSED
        )
        for _ in range(500)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {InboundMessage._meta.db_table}")
        # A test table is still small, where a sequential scan wins: ask whether the index serves the query.
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = failed_inbound_rows(admin.account)[:200].explain()
    assert "inbound_account_state" in plan, plan
