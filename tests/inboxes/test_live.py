"""Live updates (H5): change counters, the cheap poll, the list's fragment and the thread's news.

Counters go up after a change commits, so the tests run the on-commit callbacks
(`django_capture_on_commit_callbacks(execute=True)`), as a real request or task would.
The Redis tests use the database named by LIVE_TEST_REDIS_URL (default db 3, never 11-15).
"""

import os
import re
from datetime import timedelta

import pytest
import redis
import time_machine
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from inboxes import live
from inboxes.models import Conversation, Inbox, InboxAccess
from inboxes.services import assign_conversation, set_conversation_status
from tests.inboxes.helpers import default_inbox, parsed, receive
from tests.inboxes.inbox_settings_helpers import make_member

pytestmark = pytest.mark.django_db

LIVE_TEST_REDIS_URL = os.environ.get("LIVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/3")


def page_live(html: str, element: str) -> dict:
    """The data-live-* attributes of the list (`inbox-list`) or the thread (`thread`)."""
    pattern = r'id="inbox-list"[^>]*' if element == "list" else r'<ol class="thread"[^>]*'
    tag = re.search(pattern, html).group(0)
    return dict(re.findall(r'data-live-([a-z]+)="([^"]*)"', tag))


def poll(client, subdomain: str, token: str, stamp: str):
    url = reverse("inboxes:live", args=[subdomain])
    return client.get(url, {"t": token}, headers={"If-None-Match": f'"{stamp}"'})


def mail(inbox, capture, **fields):
    with capture(execute=True):
        return receive(inbox, parsed(**fields))


@pytest.fixture
def inbox(admin) -> Inbox:
    return default_inbox(admin.account)


@pytest.fixture
def signed_in(client, agent):
    client.force_login(agent.user)
    return client


def test_the_poll_answers_304_until_a_mail_arrives_then_200_with_the_new_value(
    signed_in, inbox, django_capture_on_commit_callbacks
):
    shown = page_live(signed_in.get(reverse("inboxes:index", args=["alpha"])).text, "list")
    assert poll(signed_in, "alpha", shown["token"], shown["stamp"]).status_code == 304

    mail(inbox, django_capture_on_commit_callbacks, subject="Refund please")

    changed = poll(signed_in, "alpha", shown["token"], shown["stamp"])
    assert changed.status_code == 200
    assert changed["ETag"] == f'"{int(shown["stamp"]) + 1}"'
    assert changed["Cache-Control"] == "no-store"
    assert poll(signed_in, "alpha", shown["token"], changed.text).status_code == 304


def test_the_poll_reads_one_row_without_the_session(client, agent, inbox, django_assert_num_queries):
    """An idle tab costs a signature check and one counter read: no session, user or member query."""
    token = live.token("alpha", agent.account_id)
    with django_assert_num_queries(1):
        assert poll(client, "alpha", token, "0").status_code == 304


def test_a_forged_expired_or_other_accounts_token_gets_403(client, agent, outsider):
    token = live.token("alpha", agent.account_id)
    assert poll(client, "alpha", token[:-2] + "xx", "0").status_code == 403
    assert poll(client, "bravo", token, "0").status_code == 403
    with time_machine.travel(timezone.now() + timedelta(seconds=live.TOKEN_SECONDS + 5)):
        assert poll(client, "alpha", token, "0").status_code == 403


@pytest.mark.parametrize("change", ["assign", "close", "note"])
def test_an_assignment_a_close_or_a_note_moves_the_list_and_the_thread_counters(
    change, client, admin, agent, inbox, django_capture_on_commit_callbacks
):
    message = mail(inbox, django_capture_on_commit_callbacks)
    conversation = message.conversation
    before = (live.stamp(admin.account_id), live.stamp(admin.account_id, conversation.pk))
    client.force_login(agent.user)
    url = reverse(f"conversations:{change}", args=["alpha", conversation.pk])
    data = {"assignee": agent.pk} if change == "assign" else {"body": "Checked the order"}
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, data).status_code == 302
    after = (live.stamp(admin.account_id), live.stamp(admin.account_id, conversation.pk))
    assert after[0] > before[0] and after[1] > before[1]


def test_another_conversations_change_leaves_a_thread_counter_alone(
    admin, inbox, django_capture_on_commit_callbacks
):
    first = mail(inbox, django_capture_on_commit_callbacks, subject="First").conversation
    shown = live.stamp(admin.account_id, first.pk)
    second = mail(inbox, django_capture_on_commit_callbacks, subject="Second").conversation
    with django_capture_on_commit_callbacks(execute=True), scopes_disabled():
        set_conversation_status(second, Conversation.Status.CLOSED, by=admin)
    assert live.stamp(admin.account_id, first.pk) == shown


def test_a_rolled_back_change_moves_no_counter(admin, inbox, django_capture_on_commit_callbacks):
    conversation = mail(inbox, django_capture_on_commit_callbacks).conversation
    shown = live.stamp(admin.account_id)
    with django_capture_on_commit_callbacks(execute=False) as callbacks, scopes_disabled():
        assign_conversation(conversation, admin, by=admin)
    assert callbacks  # registered, but a rollback (here: not executed) never runs them
    assert live.stamp(admin.account_id) == shown


def test_the_list_refresh_is_a_fragment_of_rows_tabs_and_counts(
    signed_in, inbox, django_capture_on_commit_callbacks
):
    mail(inbox, django_capture_on_commit_callbacks, subject="Refund please")
    response = signed_in.get(
        reverse("inboxes:inbox", args=["alpha", inbox.pk]) + "?view=unassigned",
        headers={"HX-Request": "true", "HX-Target": live.LIST_TARGET},
    )
    html = response.text
    assert "<html" not in html and "<h1" not in html
    assert 'id="inbox-nav"' in html and 'id="view-tabs"' in html and 'id="inbox-list"' in html
    row = re.search(r'<tr id="conversation-\d+"[^>]*>.*?</tr>', html, re.S).group(0)
    assert "Refund please" in row and 'href="/a/alpha/inbox/c/' in row
    assert re.search(r'aria-current="page">Unassigned <span class="count">1<', html)
    assert page_live(html, "list")["stamp"] == str(live.stamp(inbox.account_id))
    assert "HX-Target" in response["Vary"]


def test_the_page_itself_is_still_a_whole_page(signed_in, inbox):
    response = signed_in.get(reverse("inboxes:inbox", args=["alpha", inbox.pk]))
    assert "<html" in response.text and "<h1>" in response.text
    assert page_live(response.text, "list")["poll"] == reverse("inboxes:live", args=["alpha"])


def test_thread_news_brings_the_new_message_and_panels_never_the_composer(
    signed_in, agent, inbox, django_capture_on_commit_callbacks
):
    first = mail(inbox, django_capture_on_commit_callbacks, subject="Order", text="Where is it?")
    thread = signed_in.get(reverse("inboxes:thread", args=["alpha", first.conversation_id])).text
    shown = page_live(thread, "thread")
    assert shown["after"].endswith(f"_{first.pk}")
    second = mail(
        inbox,
        django_capture_on_commit_callbacks,
        subject="Re: Order",
        text="Any news?",
        in_reply_to=[first.message_id],
        references=[first.message_id],
    )
    assert second.conversation_id == first.conversation_id
    assert poll(signed_in, "alpha", shown["token"], shown["stamp"]).status_code == 200

    news = signed_in.get(shown["news"], {"after": shown["after"]}, headers={"HX-Request": "true"}).text
    assert f'id="message-{second.pk}"' in news and "Any news?" in news
    assert 'id="conversation-status"' in news and 'id="activity"' in news and "assignment-panel" in news
    assert 'id="composer"' not in news and 'id="note-composer"' not in news
    assert re.search(r'data-live-after="[^"]*_' + str(second.pk) + '"', news)


def test_thread_news_follows_a_close(signed_in, admin, inbox, django_capture_on_commit_callbacks):
    conversation = mail(inbox, django_capture_on_commit_callbacks).conversation
    with scopes_disabled():
        set_conversation_status(conversation, Conversation.Status.CLOSED, by=admin)
    news = signed_in.get(reverse("inboxes:thread_news", args=["alpha", conversation.pk])).text
    assert re.search(r'id="conversation-status">Closed<', news)
    assert "Reopen conversation" in news


def test_an_outsider_gets_404_for_thread_news(client, outsider, inbox, django_capture_on_commit_callbacks):
    conversation = mail(inbox, django_capture_on_commit_callbacks).conversation
    client.force_login(outsider.user)
    assert client.get(reverse("inboxes:thread_news", args=["alpha", conversation.pk])).status_code == 404
    assert client.get(reverse("inboxes:thread_news", args=["bravo", conversation.pk])).status_code == 404


def test_an_agent_taken_off_the_access_list_gets_404_for_thread_news_at_once(
    signed_in, admin, agent, inbox, django_capture_on_commit_callbacks
):
    conversation = mail(inbox, django_capture_on_commit_callbacks, text="Secret plans").conversation
    url = reverse("inboxes:thread_news", args=["alpha", conversation.pk])
    assert signed_in.get(url).status_code == 200
    with scopes_disabled():
        Inbox.objects.filter(pk=inbox.pk).update(access=Inbox.Access.SPECIFIC)
        InboxAccess.objects.create(
            account=admin.account, inbox=inbox, member=make_member(admin.account, "Dana")
        )
    response = signed_in.get(url)
    assert response.status_code == 404 and "Secret plans" not in response.text


@pytest.fixture
def with_redis(settings):
    client = redis.Redis.from_url(LIVE_TEST_REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {LIVE_TEST_REDIS_URL}")
    settings.REDIS_URL = LIVE_TEST_REDIS_URL
    keys = lambda: client.keys(f"{live.KEY_PREFIX}:*")  # noqa: E731
    if keys():
        client.delete(*keys())
    yield client
    if keys():
        client.delete(*keys())


# One Redis database serves these tests and the browser tests of live lists: one worker runs them all.
@pytest.mark.xdist_group("browser")
def test_with_redis_the_counters_are_its_keys_and_the_poll_reads_no_table(
    client, admin, inbox, with_redis, django_capture_on_commit_callbacks, django_assert_num_queries
):
    conversation = mail(inbox, django_capture_on_commit_callbacks).conversation
    assert int(with_redis.get(f"inboxhub:live:{admin.account_id}:0")) == 1
    assert int(with_redis.get(f"inboxhub:live:{admin.account_id}:{conversation.pk}")) == 1
    assert (
        0
        < with_redis.ttl(f"inboxhub:live:{admin.account_id}:{conversation.pk}")
        <= (live.CONVERSATION_KEY_SECONDS)
    )
    token = live.token("alpha", admin.account_id, conversation.pk)
    with django_assert_num_queries(0):
        assert poll(client, "alpha", token, "1").status_code == 304
        assert poll(client, "alpha", token, "0").status_code == 200
    with scopes_disabled():
        from inboxes.models import LiveStamp

        assert not LiveStamp.objects.exists()  # without Redis only


def test_with_redis_down_the_page_still_renders_and_the_poll_says_try_later(signed_in, agent, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/3"  # nothing listens there
    page = signed_in.get(reverse("inboxes:index", args=["alpha"]))
    assert page.status_code == 200 and "data-live-poll" not in page.text
    response = poll(signed_in, "alpha", live.token("alpha", agent.account_id), "0")
    assert response.status_code == 503


def test_the_poll_is_answered_before_the_session_and_csp_middleware(client, agent):
    response = poll(client, "alpha", live.token("alpha", agent.account_id), "0")
    assert response.status_code == 304
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response and "Cookie" not in response.get("Vary", "")


def test_the_poll_checks_the_host_like_every_other_request(client, agent):
    token = live.token("alpha", agent.account_id)
    response = client.get(reverse("inboxes:live", args=["alpha"]), {"t": token}, HTTP_HOST="evil.example")
    assert response.status_code == 400


# --- One bump per transaction (the counters a transaction noted, bumped together at its commit) ---


def counters(account_id: int, *conversation_ids: int) -> tuple[int, ...]:
    return tuple(live.stamp(account_id, pk) for pk in (live.ACCOUNT, *conversation_ids))


class Undone(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_the_changes_of_one_transaction_are_one_bump_at_its_commit(admin):
    account = admin.account_id
    with transaction.atomic():
        with transaction.atomic():  # as receive_message
            live.note_change(account, 101)
        with transaction.atomic():  # as the new conversation's ticket
            live.note_change(account, 101, 102)
        assert counters(account, 101, 102) == (0, 0, 0)  # nothing before the commit

    assert counters(account, 101, 102) == (1, 1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_savepoint_rolled_back_never_takes_the_transactions_other_changes_with_it(admin):
    account = admin.account_id
    with transaction.atomic():
        with transaction.atomic():
            live.note_change(account, 201)  # released: waits for the outer commit
        with pytest.raises(Undone), transaction.atomic():
            live.note_change(account, 202)
            raise Undone
        live.note_change(account, 203)

    assert counters(account, 201, 203) == (1, 1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_transaction_rolled_back_bumps_nothing_and_the_next_one_bumps_alone(admin):
    account = admin.account_id
    with pytest.raises(Undone), transaction.atomic():
        live.note_change(account, 301)
        raise Undone
    with transaction.atomic():
        live.note_change(account, 302)

    assert counters(account, 301, 302) == (1, 0, 1)


# --- With Redis, an open list asks for the rows changed since the value it shows (H5) ---


def list_refresh(client, inbox, *, view="unassigned", **params):
    url = reverse("inboxes:inbox", args=["alpha", inbox.pk])
    return client.get(
        url, {"view": view, **params}, headers={"HX-Request": "true", "HX-Target": live.LIST_TARGET}
    )


def row_ids(html: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'<tr id="conversation-(\d+)"', html)}


@pytest.mark.xdist_group("browser")
def test_with_redis_a_list_refresh_answers_only_the_rows_changed_since_its_value(
    signed_in, admin, inbox, with_redis, django_capture_on_commit_callbacks
):
    first = mail(inbox, django_capture_on_commit_callbacks, subject="First").conversation
    taken = mail(inbox, django_capture_on_commit_callbacks, subject="Taken").conversation
    shown = live.stamp(admin.account_id)
    newest = mail(inbox, django_capture_on_commit_callbacks, subject="Newest").conversation
    with django_capture_on_commit_callbacks(execute=True), scopes_disabled():
        assign_conversation(taken, admin, by=admin)  # out of Unassigned

    html = list_refresh(signed_in, inbox, changed_since=shown).text

    changes = re.search(r'<div id="inbox-list-changes"[^>]*>', html).group(0)
    changed = {int(pk) for pk in re.search(r'data-live-changed="([^"]*)"', changes)[1].split()}
    assert changed == {taken.pk, newest.pk}
    assert row_ids(html) == {newest.pk}  # the taken one left the view: its row goes, none comes
    assert first.pk not in row_ids(html) and 'id="inbox-list"' not in html
    assert re.search(r'aria-current="page">Unassigned <span class="count">2<', html)
    assert f'data-live-stamp="{live.stamp(admin.account_id)}"' in changes


@pytest.mark.xdist_group("browser")
def test_with_redis_a_value_the_log_cannot_answer_for_gets_the_whole_list(
    signed_in, admin, inbox, with_redis, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(live, "LOG_SIZE", 2)
    shown = live.stamp(admin.account_id)
    made = [
        mail(inbox, django_capture_on_commit_callbacks, subject=f"Mail {n}").conversation for n in range(4)
    ]

    assert live.changed_since(admin.account_id, shown) is None  # the two oldest changes were dropped
    assert live.changed_since(admin.account_id, shown + 2) == [made[2].pk, made[3].pk]
    assert live.changed_since(admin.account_id, shown + 99) is None  # a value from before a reset
    whole = list_refresh(signed_in, inbox, changed_since=shown).text
    assert 'id="inbox-list"' in whole and row_ids(whole) == {c.pk for c in made}
    deep = list_refresh(signed_in, inbox, changed_since=shown + 2, before="2999-01-01T00:00:00+00:00_1").text
    assert 'id="inbox-list-changes"' not in deep  # a page further down always refetches whole


def test_without_redis_a_list_refresh_is_always_whole(
    signed_in, admin, inbox, django_capture_on_commit_callbacks
):
    shown = live.stamp(admin.account_id)
    mail(inbox, django_capture_on_commit_callbacks, subject="Refund please")

    html = list_refresh(signed_in, inbox, changed_since=shown).text

    assert 'id="inbox-list"' in html and 'id="inbox-list-changes"' not in html
