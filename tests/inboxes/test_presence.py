"""Who else is here (issue 17): the thread's heartbeat shows the other members viewing or writing a
reply; a reply that crossed another member's asks first; the same reply posted twice is sent once."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client, TestCase
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from inboxes.models import Conversation, Message, Presence
from inboxes.replies import send_reply
from inboxes.tasks import prune_presence_task
from inboxhub.celery import app as celery_app
from ingest.pipeline import ingest_inbound
from tests.concurrency import at_once
from tests.inboxes.helpers import address_of, raw_mail, spool
from tests.inboxes.inbox_settings_helpers import make_inbox, make_member

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def eager(monkeypatch):
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)


def conversation_in(inbox) -> Conversation:
    to = address_of(inbox)
    ingest_inbound(spool(raw_mail(to=to, message_id=f"<q-{inbox.pk}@customer.example>"), to))
    with scopes_disabled():
        return Conversation.objects.select_related("inbox", "contact").get(inbox=inbox)


@pytest.fixture
def conversation(inbox) -> Conversation:
    return conversation_in(inbox)


def presence_url(conversation) -> str:
    return reverse("inboxes:presence", args=[conversation.account.subdomain, conversation.pk])


def reply_url(conversation) -> str:
    return reverse("inboxes:reply", args=[conversation.account.subdomain, conversation.pk])


def beat(member, conversation, state="viewing"):
    client = Client()
    client.force_login(member.user)
    return client.post(presence_url(conversation), {"state": state})


def beats_at_once(member, conversation, *states) -> list[int | Exception]:
    """Post each state from a connection of its own, released together; each answer's status code."""
    return at_once(*(lambda state=state: beat(member, conversation, state).status_code for state in states))


def replied(member, conversation, body="We shipped it today.") -> Message:
    """A reply `member` sent from the thread, as the service stores it."""
    with scopes_disabled(), TestCase.captureOnCommitCallbacks(execute=True):
        return send_reply(conversation, body=body, by=member)


def outgoing(conversation) -> list[Message]:
    with scopes_disabled():
        return list(Message.objects.filter(conversation=conversation, direction="outgoing").order_by("pk"))


def post_reply(member, conversation, *, seen_reply, headers=None, **fields):
    client = Client()
    client.force_login(member.user)
    data = {"body": "Your parcel is on its way.", "seen_reply": seen_reply, **fields}
    # Queued replies are delivered once the request's transaction commits, as outside a test.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(reply_url(conversation), data, headers=headers or {})


# --- presence ---


def test_a_member_on_the_thread_sees_another_member_viewing_it(admin, agent, conversation):
    beat(admin, conversation)

    r = beat(agent, conversation)

    assert r.status_code == 200
    assert "Alice Admin is viewing" in r.text
    assert "Bob Agent" not in r.text  # never oneself


def test_a_member_writing_a_reply_shows_as_writing_a_reply(admin, agent, conversation):
    beat(admin, conversation, "typing")

    r = beat(agent, conversation)

    assert "Alice Admin is writing a reply" in r.text


def test_alone_on_the_thread_the_answer_names_nobody(agent, conversation):
    r = beat(agent, conversation)

    assert r.status_code == 200
    assert "Also here" not in r.text


def test_a_member_whose_heartbeats_stopped_drops_out_after_the_expiry(admin, agent, conversation):
    with time_machine.travel(timezone.now() - timedelta(seconds=31)):
        beat(admin, conversation)

    r = beat(agent, conversation)

    assert "Alice Admin" not in r.text


def test_leaving_the_page_removes_the_member_at_once(admin, agent, conversation):
    beat(admin, conversation)

    gone = beat(admin, conversation, "gone")

    assert gone.status_code == 204
    assert "Alice Admin" not in beat(agent, conversation).text
    with scopes_disabled():
        assert list(Presence.objects.filter(member=admin).values_list("state", flat=True)) == ["left"]


def test_a_heartbeat_arriving_after_the_goodbye_does_not_bring_the_member_back(admin, agent, conversation):
    # The page beat and said goodbye at once; the beat's request was answered last.
    beat(admin, conversation, "gone")
    beat(admin, conversation)

    assert "Alice Admin" not in beat(agent, conversation).text
    # Back on the page a moment later (another tab, the back button): there again.
    with time_machine.travel(timezone.now() + timedelta(seconds=6)):
        beat(admin, conversation)
        assert "Alice Admin is viewing" in beat(agent, conversation).text


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_and_a_goodbye_at_the_same_moment_leave_the_member_gone(admin, agent, conversation):
    """Whichever of the two requests the database takes first, the member is gone: a beat first is
    overwritten by the goodbye, a beat second is held off by it. Every other round starts with no row,
    so both requests also race to insert it."""
    for round_number in range(12):
        if round_number % 2 == 0:
            with scopes_disabled():
                Presence.objects.filter(member=admin).delete()
        answers = beats_at_once(admin, conversation, "viewing", "gone")

        assert answers == [200, 204]
        with scopes_disabled():
            assert list(Presence.objects.filter(member=admin).values_list("state", flat=True)) == ["left"]
        assert "Alice Admin" not in beat(agent, conversation).text


def test_the_periodic_prune_drops_pages_closed_without_a_goodbye_and_keeps_open_ones(
    admin, agent, conversation
):
    with time_machine.travel(timezone.now() - timedelta(hours=2)):
        beat(admin, conversation)  # a laptop closed mid-thread: no "gone" ever came
    beat(agent, conversation)

    assert prune_presence_task.apply().result == 1

    with scopes_disabled():
        assert list(Presence.objects.values_list("member", flat=True)) == [agent.pk]
    assert prune_presence_task.name in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}


def test_one_row_per_member_and_conversation_however_many_heartbeats(admin, conversation):
    for state in ("viewing", "typing", "viewing"):
        beat(admin, conversation, state)

    with scopes_disabled():
        assert list(Presence.objects.values_list("member", "state")) == [(admin.pk, "viewing")]


def test_an_unknown_state_is_refused(agent, conversation):
    r = beat(agent, conversation, "dancing")

    assert r.status_code == 400
    with scopes_disabled():
        assert not Presence.objects.exists()


def test_an_outsider_gets_404_and_is_never_recorded(outsider, conversation):
    r = beat(outsider, conversation)

    assert r.status_code == 404
    with scopes_disabled():
        assert not Presence.objects.exists()


def test_another_accounts_viewers_never_show(admin, outsider, conversation, other_inbox):
    theirs = conversation_in(other_inbox)
    beat(outsider, theirs)

    r = beat(admin, conversation)

    assert "Charlie" not in r.text


def test_an_agent_off_a_restricted_inbox_gets_404(admin, agent):
    ada = make_member(admin.account, "Ada Agent")
    restricted = make_inbox(admin, "Billing", members=[ada])
    conversation = conversation_in(restricted)

    assert beat(agent, conversation).status_code == 404
    assert beat(ada, conversation).status_code == 200


def test_a_member_taken_off_the_access_list_drops_out_at_once(admin, agent):
    ada = make_member(admin.account, "Ada Agent")
    restricted = make_inbox(admin, "Billing", members=[ada, agent])
    conversation = conversation_in(restricted)
    beat(agent, conversation)
    assert "Bob Agent is viewing" in beat(ada, conversation).text

    with scopes_disabled():
        restricted.access_grants.filter(member=agent).delete()

    assert "Bob Agent" not in beat(ada, conversation).text


def test_a_heartbeat_without_the_csrf_token_is_refused(agent, conversation):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent.user)

    r = client.post(presence_url(conversation), {"state": "viewing"})

    assert r.status_code == 403
    with scopes_disabled():
        assert not Presence.objects.exists()


def test_a_heartbeat_costs_a_fixed_handful_of_queries(admin, agent, conversation, django_assert_num_queries):
    """Session, user, account, membership, the conversation, the upsert, the others: whoever is there."""
    for n in range(5):
        beat(make_member(admin.account, f"Viewer {n}"), conversation)
    client = Client()
    client.force_login(agent.user)
    client.post(presence_url(conversation), {"state": "viewing"})

    with django_assert_num_queries(7):
        r = client.post(presence_url(conversation), {"state": "viewing"})

    assert r.text.count("is viewing") == 5


def test_the_thread_page_has_the_presence_region_and_the_composer_its_newest_reply(
    client, agent, admin, conversation
):
    reply = replied(admin, conversation)
    client.force_login(agent.user)

    r = client.get(reverse("inboxes:thread", args=["alpha", conversation.pk]))

    assert f'data-presence-url="{presence_url(conversation)}"' in r.text
    assert f'name="seen_reply" value="{reply.pk}"' in r.text


# --- a reply that crossed another member's ---


def test_a_reply_after_someone_elses_asks_first_and_sends_nothing(admin, agent, conversation, mail_server):
    with time_machine.travel(timezone.now() - timedelta(seconds=30)):
        replied(admin, conversation)

    r = post_reply(agent, conversation, seen_reply=0, headers=HTMX)

    assert r.status_code == 200
    assert re.search(r"Alice Admin replied 3\d s ago — send anyway\?", r.text)  # 30 s, on a slow machine 31
    assert 'name="confirmed_reply"' in r.text and "Send anyway" in r.text
    # Only the warning region is swapped: the draft and its chosen files stay in the browser.
    assert r.headers["HX-Retarget"] == "#reply-warning"
    assert r.headers["HX-Reselect"] == "#reply-warning"
    assert len(outgoing(conversation)) == 1
    assert len(mail_server.messages) == 1


def test_send_anyway_sends_the_reply(admin, agent, conversation, mail_server):
    theirs = replied(admin, conversation)

    r = post_reply(agent, conversation, seen_reply=0, confirmed_reply=theirs.pk, headers=HTMX)

    assert r.status_code == 200
    assert [m.sent_by_id for m in outgoing(conversation)] == [admin.pk, agent.pk]
    assert len(mail_server.messages) == 2


def test_confirming_one_reply_does_not_cover_a_later_one(admin, agent, conversation, mail_server):
    first = replied(admin, conversation, "First answer.")
    ada = make_member(admin.account, "Ada Agent")
    replied(ada, conversation, "Second answer.")

    r = post_reply(agent, conversation, seen_reply=0, confirmed_reply=first.pk, headers=HTMX)

    assert re.search(r"Ada Agent replied \d s ago — send anyway\?", r.text)
    assert len(outgoing(conversation)) == 2


def test_a_reply_seen_before_starting_does_not_warn(admin, agent, conversation, mail_server):
    theirs = replied(admin, conversation)

    r = post_reply(agent, conversation, seen_reply=theirs.pk)

    assert r.status_code == 302
    assert len(outgoing(conversation)) == 2


def test_the_agents_own_earlier_reply_does_not_warn(agent, conversation, mail_server):
    replied(agent, conversation, "A first word.")

    r = post_reply(agent, conversation, seen_reply=0)

    assert r.status_code == 302
    assert len(outgoing(conversation)) == 2


def test_without_javascript_the_warning_is_a_page_with_their_reply_and_the_draft(
    admin, agent, conversation, mail_server
):
    replied(admin, conversation, "We refunded you yesterday.")

    r = post_reply(agent, conversation, seen_reply=0, body="I will refund you <today>.")

    assert r.status_code == 409
    assert re.search(r"Alice Admin replied \d s ago — send anyway\?", r.text)
    assert "We refunded you yesterday." in r.text
    assert "I will refund you &lt;today&gt;.</textarea>" in r.text
    assert r.text.count("<h1>") == 1
    assert len(outgoing(conversation)) == 1


def test_an_outsider_posting_a_reply_gets_404(outsider, conversation):
    r = post_reply(outsider, conversation, seen_reply=0)

    assert r.status_code == 404
    assert outgoing(conversation) == []


# --- the same reply posted twice ---


def test_the_same_form_posted_twice_sends_one_reply(agent, conversation, mail_server):
    first = post_reply(agent, conversation, seen_reply=0)
    second = post_reply(agent, conversation, seen_reply=0)

    [reply] = outgoing(conversation)
    assert first.status_code == second.status_code == 302
    assert second.url.endswith(f"#message-{reply.pk}")
    assert len(mail_server.messages) == 1


def test_a_double_submit_through_htmx_answers_a_fresh_composer_and_sends_once(
    agent, conversation, mail_server
):
    post_reply(agent, conversation, seen_reply=0, headers=HTMX)

    r = post_reply(agent, conversation, seen_reply=0, headers=HTMX)

    [reply] = outgoing(conversation)
    assert r.status_code == 200
    assert f'name="seen_reply" value="{reply.pk}"' in r.text
    assert f'id="message-{reply.pk}"' not in r.text  # not appended to the thread a second time
    assert len(mail_server.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_two_sends_at_the_same_moment_send_one_reply(agent, conversation, mail_server):
    """Two posts of one form racing (a double click without JavaScript): the row lock lets one through."""

    def send() -> int:
        return post_reply(agent, conversation, seen_reply=0).status_code

    answers = at_once(send, send)

    assert answers == [302, 302]
    assert len(outgoing(conversation)) == 1
    assert len(mail_server.messages) == 1


def test_two_members_sending_at_once_the_second_is_asked(admin, agent, conversation, mail_server):
    """Both started from the same thread: the first send goes, the second asks (no double answer)."""
    assert post_reply(admin, conversation, seen_reply=0).status_code == 302

    r = post_reply(agent, conversation, seen_reply=0)

    assert r.status_code == 409
    assert len(outgoing(conversation)) == 1


def test_a_draft_refused_for_its_own_reason_still_remembers_what_it_had_seen(admin, agent, conversation):
    """An empty body comes back with its error; the composer still warns about the crossing reply."""
    replied(admin, conversation)

    r = post_reply(agent, conversation, seen_reply=0, body="", headers=HTMX)

    assert "Write a reply before sending." in r.text
    assert 'name="seen_reply" value="0"' in r.text
