"""B11 (header injection into a reply), F11 (the smarthost refuses or is down) and advisory 21 (no
credentials in a failure), checked at a real SMTP capture server (tests/smarthost.py).

Already covered elsewhere: tests/inboxes/test_replies.py (451 then 250 → sent on the second try;
550 → failed with the reason and Retry; Retry sends; a sent reply is never sent again),
tests/inboxhub/test_outbound.py (the app's own mail: invites, verifications).
"""

import logging
import socket
import threading
from datetime import timedelta

import pytest
import time_machine
from celery import signals
from django.core import mail as django_mail
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from channels_conn.models import FallbackAddress
from inboxes import replies as inbox_replies
from inboxes.models import Contact, Conversation, Message
from inboxes.tasks import deliver_reply_task
from inboxhub.celery import app as celery_app
from inboxhub.models import Membership
from ingest.pipeline import ingest_inbound, process_inbound_message
from tests.channels_conn.conftest import free_port
from tests.inboxes.helpers import address_of, default_inbox, fallback_address, raw_mail, spool
from tests.smarthost import smarthost, use_smarthost

pytestmark = pytest.mark.django_db

SECRET = "s3cret-smarthost-pass"
INJECTED = "Bcc: mallory@evil.example"


@pytest.fixture(autouse=True)
def eager(monkeypatch):
    """Queued replies are delivered in the test's process, as without REDIS_URL."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)


@pytest.fixture
def capture(settings):
    with smarthost(settings) as handler:
        yield handler


def conversation_from(admin, raw_headers: dict[str, str]) -> Conversation:
    inbox = default_inbox(admin.account)
    to = address_of(inbox)
    lines = {"From": "Carol Customer <carol@customer.example>", "Subject": "Where is my order?"}
    lines.update(raw_headers)
    raw = raw_mail(to=to, sender=lines["From"], subject=lines["Subject"], message_id="<q1@customer.example>")
    ingest_inbound(spool(raw, to))
    with scopes_disabled():
        return Conversation.objects.select_related("inbox", "contact").get(account=admin.account)


@pytest.fixture
def send(client, django_capture_on_commit_callbacks):
    def post(member, conversation, body="Your parcel left this morning."):
        client.force_login(member.user)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                reverse("inboxes:reply", args=[conversation.account.subdomain, conversation.pk]),
                {"body": body},
            )

    return post


def replies_of(conversation) -> list[Message]:
    with scopes_disabled():
        return list(conversation.messages.filter(direction="outgoing").order_by("pk"))


def assert_one_clean_mail(capture, *, to: str = "carol@customer.example"):
    """Exactly one mail, to exactly the contact, each header once and none injected."""
    [(rcpt_tos, mail)] = capture.messages
    assert rcpt_tos == [to]
    names = [name.lower() for name in mail]
    for name in ("from", "to", "subject", "reply-to", "message-id"):
        assert names.count(name) == 1, (name, names)
    assert "bcc" not in names and "x-injected" not in names and "cc" not in names
    for name in ("From", "To", "Subject"):
        assert "\r" not in str(mail[name]) and "\n" not in str(mail[name]), (name, mail[name])
    return mail


# --- B11: CR, LF and U+2028 in what a reply's headers are made of ---


def test_cr_lf_and_u2028_in_the_customers_subject_stay_inside_one_subject_header(admin, agent, send, capture):
    # Encoded words decode to CR LF and U+2028: the parser keeps them in the subject it stores.
    subject = "=?utf-8?q?Hi=0D=0ABcc:_mallory@evil.example?= =?utf-8?b?4oCoWC1JbmplY3RlZDogMQ==?="
    conversation = conversation_from(admin, {"Subject": subject})

    assert send(agent, conversation).status_code == 302

    mail = assert_one_clean_mail(capture)
    assert mail["Subject"].startswith("Re: Hi Bcc: mallory@evil.example")
    assert [r.delivery_state for r in replies_of(conversation)] == ["sent"]


def test_u2028_in_the_customers_display_name_stays_inside_the_to_header(admin, agent, send, capture):
    conversation = conversation_from(
        admin, {"From": "=?utf-8?q?Carol=E2=80=A8Bcc:_mallory@evil.example?= <carol@customer.example>"}
    )

    send(agent, conversation)

    mail = assert_one_clean_mail(capture)
    assert mail["To"].addresses[0].addr_spec == "carol@customer.example"
    assert len(mail["To"].addresses) == 1


def test_a_display_name_that_decodes_to_cr_lf_never_becomes_a_recipient_name(admin):
    """Such a From is unreadable: the message is kept as failed for an admin, no contact gets that name."""
    inbox = default_inbox(admin.account)
    to = address_of(inbox)
    sender = "=?utf-8?q?Carol=0D=0ABcc:_mallory@evil.example?= <carol@customer.example>"
    row = spool(raw_mail(to=to, sender=sender), to)

    assert process_inbound_message(row.pk) == "failed"

    with scopes_disabled():
        names = list(Contact.objects.filter(account=admin.account).values_list("name", flat=True))
    assert not any("\r" in name or "\n" in name for name in names)


@pytest.mark.parametrize(
    "company",
    [
        pytest.param(f"Alpha\r\n{INJECTED}", id="crlf"),
        pytest.param(f"Alpha\n{INJECTED}", id="lf"),
        pytest.param(f"Alpha\u2028{INJECTED}", id="u2028"),
    ],
)
def test_a_company_name_with_a_line_break_never_adds_a_header_or_a_recipient(
    admin, agent, send, capture, client, company
):
    """Saved through the Configuration tab by a crafted POST: refused, or sent as one From header."""
    inbox = default_inbox(admin.account)
    conversation = conversation_from(admin, {})
    client.force_login(admin.user)
    address = fallback_address(inbox)
    saving = client.post(
        reverse("fallback:configuration", args=["alpha", inbox.pk]),
        {
            "send_from": "on",
            "from_name_mode": "agent_and_company",
            "company_name": company,
            "from_address_mode": "default",
            "select_original_sender": "on",
        },
    )
    assert saving.status_code in (302, 400)  # saved, or the form came back with its error
    with scopes_disabled():
        saved = FallbackAddress.objects.get(pk=address.pk).company_name

    send(agent, conversation)

    if saved == address.company_name:  # refused: the reply goes out under the old name
        assert_one_clean_mail(capture)
        return
    # Accepted: the reply must still leave as one clean mail, or fail visibly; never hang in "sending".
    [reply] = replies_of(conversation)
    assert reply.delivery_state in ("sent", "failed"), reply.delivery_state
    if reply.delivery_state == "sent":
        assert_one_clean_mail(capture)
    else:
        assert capture.messages == [] and reply.delivery_error


def test_an_agent_name_with_a_line_break_never_leaves_a_reply_hanging(admin, send, capture, client):
    """A member's name is free text: an admin adds one by a crafted POST, the member then replies."""
    conversation = conversation_from(admin, {})
    client.force_login(admin.user)
    added = client.post(
        reverse("member_add", args=["alpha"]),
        {
            "full_name": f"Bob\r\n{INJECTED}",
            "email": "bob.crlf@alpha.example",
            "seat": "service_hub",
            "permission": "agent",
            "how": "password",
            "password": "correct-horse-battery-staple",
        },
    )
    assert added.status_code == 302  # accepted as it is
    with scopes_disabled():
        member = Membership.objects.get(user__email="bob.crlf@alpha.example")

    send(member, conversation)

    [reply] = replies_of(conversation)
    assert reply.delivery_state in ("sent", "failed"), reply.delivery_state
    if reply.delivery_state == "sent":
        assert_one_clean_mail(capture)


# --- F11: the smarthost refuses, is down, or never answers ---


@pytest.fixture
def retries():
    """The countdown of each retry the delivery task asks Celery for (the task_retry signal)."""
    seen: list[float] = []

    def record(sender=None, request=None, reason=None, einfo=None, **kwargs):
        if sender is deliver_reply_task or getattr(sender, "name", "") == deliver_reply_task.name:
            seen.append(getattr(reason, "when", None))

    signals.task_retry.connect(record, weak=False)
    yield seen
    signals.task_retry.disconnect(record)


def test_a_smarthost_refusing_the_connection_keeps_the_reply_queued_and_retries_it_then_fails_visibly(
    admin, agent, send, settings, retries, client
):
    use_smarthost(settings, free_port())  # nothing listens there: connection refused
    conversation = conversation_from(admin, {})

    send(agent, conversation)

    [reply] = replies_of(conversation)
    assert deliver_reply_task.max_retries == 5 and deliver_reply_task.retry_backoff == 30
    assert len(retries) == 5  # retried, each time with a countdown from the backoff
    assert all(when is not None for when in retries)
    assert reply.delivery_attempts == 6
    assert reply.delivery_state == "failed"
    assert "refused" in reply.delivery_error.lower()
    page = client.get(reverse("inboxes:thread", args=["alpha", conversation.pk])).text
    assert "Failed" in page and ">Retry</button>" in page


def test_between_attempts_a_reply_waits_queued_with_the_last_error(admin, agent, send, settings):
    """What the agent sees while the smarthost is down: queued, with why it has not gone yet."""
    use_smarthost(settings, free_port())
    conversation = conversation_from(admin, {})
    states = []

    def look(sender=None, **kwargs):
        with scopes_disabled():
            reply = Message.objects.get(conversation=conversation, direction="outgoing")
        states.append((reply.delivery_state, bool(reply.delivery_error)))

    signals.task_retry.connect(look, weak=False)
    try:
        send(agent, conversation)
    finally:
        signals.task_retry.disconnect(look)

    assert states and set(states) == {("queued", True)}


def test_after_the_smarthost_recovers_retry_sends_exactly_one_copy(
    admin, agent, send, settings, client, django_capture_on_commit_callbacks
):
    port = free_port()
    use_smarthost(settings, port)
    conversation = conversation_from(admin, {})
    send(agent, conversation)
    [reply] = replies_of(conversation)
    assert reply.delivery_state == "failed"

    with smarthost(settings) as capture:
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("inboxes:retry_reply", args=["alpha", conversation.pk, reply.pk]))
        with django_capture_on_commit_callbacks(execute=True):  # a second click changes nothing
            client.post(reverse("inboxes:retry_reply", args=["alpha", conversation.pk, reply.pk]))

    assert len(capture.messages) == 1
    [(_, mail)] = capture.messages
    assert mail["Message-ID"] == f"<{reply.message_id}>"
    reply.refresh_from_db()
    assert reply.delivery_state == "sent"


@pytest.fixture
def silent_server(settings):
    """A TCP server that accepts connections and never says a word (a hung smarthost)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    use_smarthost(settings, listener.getsockname()[1])
    settings.EMAIL_TIMEOUT = 0.3
    yield held
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_smarthost_that_never_answers_times_out_retries_and_then_fails_visibly(
    admin, agent, send, silent_server, retries
):
    conversation = conversation_from(admin, {})

    send(agent, conversation)

    [reply] = replies_of(conversation)
    assert len(silent_server) == 6  # every attempt reached the server, none hung forever
    assert len(retries) == 5
    assert reply.delivery_state == "failed"
    assert "timed out" in reply.delivery_error.lower()


@pytest.fixture
def greeting_server(settings):
    """A server that greets with a fixed answer and hangs up, as a smarthost refusing service does."""
    answers: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(answers[0] if answers else b"554 5.3.2 No service here\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    use_smarthost(settings, listener.getsockname()[1])
    yield answers
    stop.set()
    thread.join()
    listener.close()


def test_a_smarthost_refusing_service_with_554_fails_the_reply_at_once_with_its_reason(
    admin, agent, send, greeting_server, retries
):
    conversation = conversation_from(admin, {})

    send(agent, conversation)

    [reply] = replies_of(conversation)
    assert retries == []  # permanent: no retry
    assert (reply.delivery_state, reply.delivery_attempts) == ("failed", 1)
    assert "554" in reply.delivery_error and "No service here" in reply.delivery_error


def test_a_smarthost_answering_421_at_the_greeting_is_retried_then_failed_visibly(
    admin, agent, send, greeting_server, retries
):
    greeting_server.append(b"421 4.3.2 Too busy, try later\r\n")
    conversation = conversation_from(admin, {})

    send(agent, conversation)

    [reply] = replies_of(conversation)
    assert len(retries) == 5
    assert (reply.delivery_state, reply.delivery_attempts) == ("failed", 6)
    assert "421" in reply.delivery_error


# --- advisory 21: a failure shows no credentials ---


def test_a_failed_send_shows_and_logs_the_reason_without_the_smarthost_password(
    admin, agent, send, settings, client, caplog
):
    with smarthost(settings) as capture:
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "inboxhub", SECRET
        # Some servers echo what they were given; the reason must still not carry the password.
        capture.rcpt_answer = f"550 5.7.1 relay denied for inboxhub:{SECRET}@127.0.0.1"
        conversation = conversation_from(admin, {})
        with caplog.at_level(logging.INFO):
            send(agent, conversation)

    [reply] = replies_of(conversation)
    assert reply.delivery_state == "failed"
    assert SECRET not in reply.delivery_error
    assert "relay denied" in reply.delivery_error or "AUTH" in reply.delivery_error
    page = client.get(reverse("inboxes:thread", args=["alpha", conversation.pk])).text
    assert SECRET not in page
    assert SECRET not in caplog.text
    assert django_mail.outbox == []


@pytest.mark.skipif(
    not hasattr(inbox_replies, "sweep_replies"), reason="no sweep of lost replies in this checkout"
)
def test_a_reply_whose_task_was_lost_is_sent_exactly_once_by_the_sweep(admin, agent, client, settings):
    """Redis lost the task (here: the commit hook never ran); the periodic sweep hands the row on."""
    conversation = conversation_from(admin, {})
    client.force_login(agent.user)
    client.post(reverse("inboxes:reply", args=["alpha", conversation.pk]), {"body": "Lost, then found."})
    [reply] = replies_of(conversation)
    assert reply.delivery_state == "queued"

    with smarthost(settings) as capture, time_machine.travel(timezone.now() + timedelta(minutes=2)):
        inbox_replies.sweep_replies()
        inbox_replies.sweep_replies()  # the next beat finds nothing left to send

    assert len(capture.messages) == 1
    reply.refresh_from_db()
    assert reply.delivery_state == "sent"
