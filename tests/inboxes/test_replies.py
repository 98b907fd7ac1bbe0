"""Agents reply from the thread; the reply leaves through a worker and a real SMTP smarthost (H3).

From per C2/C4, the C6 signature filled, threading headers and a Reply-To whose
token threads the contact's answer back; refused when C1 or F2 turn sending
off, or when the member may not act (B6, B7).
"""

from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.utils.html import escape
from django_scopes import scope, scopes_disabled

from channels_conn.models import Channel
from inboxes.models import Conversation, Message
from inboxes.replies import CHANNEL_OFF, SEND_FROM_OFF, composer_context, deliver_reply
from inboxes.reply_tokens import verify_reply_token
from inboxes.tasks import sweep_replies_task
from inboxhub.celery import app as celery_app
from inboxhub.models import Membership
from ingest.pipeline import ingest_inbound
from tests.inboxes.helpers import address_of, fallback_address, raw_mail, spool
from tests.inboxes.inbox_settings_helpers import make_inbox, make_member

pytestmark = pytest.mark.django_db

GREYLISTED = "451 4.7.1 Greylisted, please try again later"
USER_UNKNOWN = "550 5.1.1 <carol@customer.example>: Recipient address rejected: User unknown"
SIGNATURE = (
    '<p>Best, <b>{{first_name}}</b></p><p>{{full_name}} · <a href="https://alpha.example">Alpha</a></p>'
)


@pytest.fixture(autouse=True)
def eager(monkeypatch):
    """Queued replies are delivered in the test's process, as without REDIS_URL."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)


@pytest.fixture
def conversation(inbox) -> Conversation:
    """Carol wrote twice to support: a question, then a nudge answering it."""
    to = address_of(inbox)
    ingest_inbound(spool(raw_mail(to=to, message_id="<raw0@customer.example>"), to))
    nudge = raw_mail(
        to=to,
        message_id="<raw1@customer.example>",
        subject="Re: Where is my order?",
        headers="In-Reply-To: <raw0@customer.example>\nReferences: <raw0@customer.example>",
        body="Any news?\n",
    )
    ingest_inbound(spool(nudge, to))
    with scopes_disabled():
        return Conversation.objects.select_related("inbox", "contact").get(account=inbox.account)


@pytest.fixture
def free_agent(admin) -> Membership:
    return make_member(admin.account, "Fred Free", seat=Membership.Seat.FREE)


def reply_url(conversation) -> str:
    return reverse("inboxes:reply", args=[conversation.account.subdomain, conversation.pk])


def retry_url(message) -> str:
    args = [message.account.subdomain, message.conversation_id, message.pk]
    return reverse("inboxes:retry_reply", args=args)


@pytest.fixture
def send(client, django_capture_on_commit_callbacks):
    """Post a reply as `member`; the queued reply is delivered once the request's transaction commits."""

    def post(member, conversation, body="Your parcel left our warehouse this morning.", **kwargs):
        client.force_login(member.user)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(reply_url(conversation), {"body": body}, **kwargs)

    return post


def outgoing(conversation) -> list[Message]:
    with scopes_disabled():
        return list(
            Message.objects.filter(conversation=conversation, direction="outgoing").order_by(
                "created_at", "pk"
            )
        )


def set_fallback(inbox, **fields) -> None:
    address = fallback_address(inbox)
    for name, value in fields.items():
        setattr(address, name, value)
    with scopes_disabled():
        address.save(update_fields=list(fields))


def turn_channel_off(inbox) -> None:
    with scopes_disabled():
        Channel.objects.filter(inbox=inbox).update(enabled=False)


def composer_for(conversation, member) -> dict:
    with scope(account=conversation.account):
        conversation = Conversation.objects.select_related("inbox", "contact", "assignee__user").get(
            pk=conversation.pk
        )
        return composer_context(conversation, member)["composer"]


def render_composer(conversation, member) -> str:
    request = RequestFactory().get("/")
    request.user = member.user
    context = {"conversation": conversation, "current_account": conversation.account}
    with scope(account=conversation.account):
        context.update(composer_context(conversation, member))
        return render_to_string("inboxes/partials/composer.html", context, request=request)


# --- what arrives at the smarthost ---


def test_a_reply_reaches_the_smarthost_from_the_agent_at_the_company_and_is_marked_sent(
    send, agent, conversation, mail_server
):
    r = send(agent, conversation)

    assert r.status_code == 302
    [reply] = outgoing(conversation)
    assert r.url == f"{reverse('inboxes:thread', args=['alpha', conversation.pk])}#message-{reply.pk}"
    [(rcpt_tos, mail)] = mail_server.messages
    assert rcpt_tos == ["carol@customer.example"]
    assert mail["From"] == "Bob Agent at Alpha <bob@alpha.mail.localhost>"
    assert mail["To"] == "Carol Customer <carol@customer.example>"
    assert mail["Subject"] == "Re: Where is my order?"
    assert mail["Cc"] is None
    assert mail["Auto-Submitted"] is None
    assert mail.get_content().strip() == "Your parcel left our warehouse this morning."
    reply.refresh_from_db()
    assert (reply.delivery_state, reply.delivery_attempts, reply.delivery_error) == ("sent", 1, "")
    assert reply.delivered_at is not None
    assert reply.sent_by == agent
    assert (reply.from_name, reply.from_email) == ("Bob Agent at Alpha", "bob@alpha.mail.localhost")


def test_a_reply_carries_its_message_id_and_the_threads_in_reply_to_and_references(
    send, agent, conversation, mail_server
):
    send(agent, conversation)

    [(_, mail)] = mail_server.messages
    [reply] = outgoing(conversation)
    assert mail["Message-ID"] == f"<{reply.message_id}>"
    assert reply.message_id.endswith("@alpha.mail.localhost")
    assert mail["In-Reply-To"] == "<raw1@customer.example>"
    assert mail["References"] == "<raw0@customer.example> <raw1@customer.example>"
    assert (reply.in_reply_to, reply.references) == (
        "raw1@customer.example",
        "raw0@customer.example raw1@customer.example",
    )


def test_a_replys_reply_to_carries_a_token_that_verifies_for_its_conversation(
    send, agent, conversation, mail_server
):
    send(agent, conversation)

    [(_, mail)] = mail_server.messages
    local, _, domain = mail["Reply-To"].rpartition("@")
    assert domain == "alpha.inbox.localhost"
    base, _, token = local.partition("+")
    assert f"{base}@{domain}" == address_of(conversation.inbox)
    assert verify_reply_token(conversation.account_id, token) == conversation.pk


def test_with_company_name_only_the_from_name_is_the_company(send, agent, conversation, mail_server):
    set_fallback(conversation.inbox, from_name_mode="company", company_name="Alpha Support")

    send(agent, conversation)

    [(_, mail)] = mail_server.messages
    assert mail["From"] == "Alpha Support <bob@alpha.mail.localhost>"


def test_a_verified_custom_from_address_is_used_and_an_unverified_one_is_not(
    send, agent, conversation, mail_server
):
    set_fallback(conversation.inbox, from_address_mode="custom", custom_from_address="help@alpha.example")
    send(agent, conversation, body="First.")
    with scopes_disabled():
        address = fallback_address(conversation.inbox)
    set_fallback(conversation.inbox, custom_from_verified_at=address.created_at)
    send(agent, conversation, body="Second.")

    assert [mail["From"] for _, mail in mail_server.messages] == [
        "Bob Agent at Alpha <bob@alpha.mail.localhost>",
        "Bob Agent at Alpha <help@alpha.example>",
    ]


def test_bounces_of_a_reply_from_our_domain_come_back_to_its_reply_address(
    send, agent, conversation, mail_server
):
    """The envelope sender is where bounces and out-of-office answers go (RFC 3464, 3834)."""
    send(agent, conversation)

    [reply] = outgoing(conversation)
    [(_, mail)] = mail_server.messages
    assert mail_server.envelope_senders == [reply.reply_to]
    assert mail["From"] == "Bob Agent at Alpha <bob@alpha.mail.localhost>"
    assert mail["Reply-To"] == reply.reply_to and "+" in reply.reply_to


def test_a_reply_from_a_custom_address_keeps_it_as_the_envelope_sender(
    send, agent, conversation, mail_server
):
    """A custom domain's SPF names us (C4): its own address stays the envelope sender."""
    set_fallback(conversation.inbox, from_address_mode="custom", custom_from_address="help@alpha.example")
    with scopes_disabled():
        address = fallback_address(conversation.inbox)
    set_fallback(conversation.inbox, custom_from_verified_at=address.created_at)
    send(agent, conversation)

    assert mail_server.envelope_senders == ["help@alpha.example"]


def test_the_signature_is_filled_with_the_sending_agents_name_in_both_parts(
    send, agent, conversation, mail_server
):
    set_fallback(conversation.inbox, signature_html=SIGNATURE)

    send(agent, conversation)

    [(_, mail)] = mail_server.messages
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = mail.get_body(("html",)).get_content()
    assert text.startswith("Your parcel left our warehouse this morning.\n\n-- \nBest, Bob")
    assert "Bob Agent · Alpha" in text
    assert "<b>Bob</b>" in html and "Bob Agent" in html and "{{" not in html
    assert '<a href="https://alpha.example"' in html


def test_the_composer_shows_the_from_and_signature_the_contact_will_see(agent, conversation):
    set_fallback(conversation.inbox, signature_html=SIGNATURE)

    composer = composer_for(conversation, agent)

    assert (composer["from_name"], composer["from_address"]) == (
        "Bob Agent at Alpha",
        "bob@alpha.mail.localhost",
    )
    assert "<b>Bob</b>" in composer["signature"] and "Bob Agent" in composer["signature"]
    assert composer["refusal"] == ""
    page = render_composer(conversation, agent)
    assert '<label for="reply-body">Reply</label>' in page
    assert '<textarea id="reply-body" name="body"' in page
    assert "Bob Agent at Alpha" in page and "&lt;bob@alpha.mail.localhost&gt;" in page
    assert "disabled" not in page


def test_a_free_seat_sends_from_the_free_domain_on_an_unassigned_conversation(
    send, free_agent, conversation, mail_server
):
    r = send(free_agent, conversation)

    assert r.status_code == 302
    [(_, mail)] = mail_server.messages
    assert mail["From"] == "Fred Free at Alpha <fred.free@alpha.free-mail.localhost>"
    assert [m.delivery_state for m in outgoing(conversation)] == ["sent"]


def test_the_conversation_moves_to_the_top_of_its_inbox(send, agent, conversation, mail_server):
    before = conversation.last_message_at

    send(agent, conversation)

    with scopes_disabled():
        conversation.refresh_from_db()
    [reply] = outgoing(conversation)
    assert conversation.last_message_at == reply.created_at > before


# --- retries and failures ---


def test_a_smarthost_answering_451_then_250_gets_the_reply_on_the_second_attempt(
    send, agent, conversation, mail_server
):
    mail_server.data_answers = [GREYLISTED]

    send(agent, conversation)

    assert mail_server.attempts == 2
    assert len(mail_server.messages) == 1
    [reply] = outgoing(conversation)
    assert (reply.delivery_state, reply.delivery_attempts, reply.delivery_error) == ("sent", 2, "")


def test_a_smarthost_answering_550_fails_the_reply_with_its_reason_and_shows_retry(
    send, agent, conversation, mail_server
):
    mail_server.rcpt_answer = USER_UNKNOWN

    send(agent, conversation)

    [reply] = outgoing(conversation)
    assert (reply.delivery_state, reply.delivery_attempts) == ("failed", 1)
    assert reply.delivery_error == USER_UNKNOWN
    shown = render_to_string(
        "inboxes/partials/delivery_state.html",
        {"message": reply, "can_act": True, "current_account": conversation.account},
    )
    assert "Failed" in shown and escape(USER_UNKNOWN) in shown
    assert f'action="{retry_url(reply)}"' in shown and ">Retry</button>" in shown


def test_retry_puts_a_failed_reply_back_in_the_queue_and_it_is_sent(
    client, send, agent, conversation, mail_server, django_capture_on_commit_callbacks
):
    mail_server.rcpt_answer = USER_UNKNOWN
    send(agent, conversation)
    [reply] = outgoing(conversation)
    mail_server.rcpt_answer = "250 OK"

    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(retry_url(reply), headers={"HX-Request": "true"})

    assert r.status_code == 200
    assert f'id="delivery-{reply.pk}"' in r.text and "Queued" in r.text
    [(_, mail)] = mail_server.messages
    assert mail["Message-ID"] == f"<{reply.message_id}>"
    reply.refresh_from_db()
    assert (reply.delivery_state, reply.delivery_attempts, reply.delivery_error) == ("sent", 2, "")


def test_a_reply_that_was_sent_is_not_sent_again(send, agent, conversation, mail_server):
    send(agent, conversation)
    [reply] = outgoing(conversation)

    assert deliver_reply(reply.pk, account_id=reply.account_id) == "skipped"
    assert len(mail_server.messages) == 1


# --- refusals (C1, F2, B6, B7) ---


def test_an_empty_reply_comes_back_with_the_reason_and_nothing_is_stored(
    send, agent, conversation, mail_server
):
    r = send(agent, conversation, body="   \n ", headers={"HX-Request": "true"})

    assert r.status_code == 200
    assert 'id="composer"' in r.text and "Write a reply before sending." in r.text
    assert outgoing(conversation) == [] and mail_server.messages == []


def test_with_sending_from_the_address_off_a_reply_is_refused_and_the_composer_says_why(
    send, agent, conversation, mail_server
):
    set_fallback(conversation.inbox, send_from=False)

    r = send(agent, conversation, headers={"HX-Request": "true"})

    assert SEND_FROM_OFF in r.text
    assert "Your parcel left our warehouse" in r.text  # the draft comes back
    assert outgoing(conversation) == [] and mail_server.messages == []
    assert composer_for(conversation, agent)["refusal"] == SEND_FROM_OFF
    assert '<fieldset class="composer-fields" disabled' in render_composer(conversation, agent)


def test_with_the_channel_off_a_reply_is_refused_with_the_reason(send, agent, conversation, mail_server):
    turn_channel_off(conversation.inbox)

    r = send(agent, conversation, follow=True)

    assert CHANNEL_OFF == "This inbox's email channel is turned off, so nothing can be sent from it."
    assert escape(CHANNEL_OFF) in r.text
    assert outgoing(conversation) == [] and mail_server.messages == []
    assert composer_for(conversation, agent)["refusal"] == CHANNEL_OFF


def test_a_queued_reply_whose_channel_was_turned_off_is_failed_not_sent(
    send, agent, conversation, mail_server, client
):
    client.force_login(agent.user)
    client.post(reply_url(conversation), {"body": "Queued, not yet delivered."})  # no commit callbacks run
    turn_channel_off(conversation.inbox)
    [reply] = outgoing(conversation)

    assert deliver_reply(reply.pk, account_id=reply.account_id) == "failed"
    reply.refresh_from_db()
    assert (reply.delivery_state, reply.delivery_error) == ("failed", CHANNEL_OFF)
    assert mail_server.messages == []


def test_admin_off_the_access_list_sees_the_thread_but_cannot_reply(send, admin, agent, mail_server):
    restricted = make_inbox(admin, "Billing", members=[agent])
    to = address_of(restricted)
    ingest_inbound(spool(raw_mail(to=to), to))
    with scopes_disabled():
        conversation = Conversation.objects.get(inbox=restricted)

    r = send(admin, conversation)

    assert r.status_code == 403
    assert outgoing(conversation) == [] and mail_server.messages == []
    assert "access list" in composer_for(conversation, admin)["refusal"]
    assert send(agent, conversation).status_code == 302


def test_a_free_seat_cannot_reply_to_a_conversation_assigned_to_someone_else(
    send, agent, free_agent, conversation, mail_server
):
    with scopes_disabled():
        Conversation.objects.filter(pk=conversation.pk).update(assignee=agent)

    r = send(free_agent, conversation)

    assert r.status_code == 403
    assert outgoing(conversation) == [] and mail_server.messages == []
    assert composer_for(conversation, free_agent)["refusal"] == (
        "With a free seat you can reply only to conversations that are unassigned or assigned to you; "
        "this one is assigned to Bob Agent."
    )


def test_an_outsider_gets_404_and_nothing_is_stored(send, outsider, conversation, mail_server):
    r = send(outsider, conversation)

    assert r.status_code == 404
    assert outgoing(conversation) == [] and mail_server.messages == []


def test_an_outsider_cannot_retry_another_accounts_reply(
    client, send, agent, outsider, conversation, mail_server
):
    mail_server.rcpt_answer = USER_UNKNOWN
    send(agent, conversation)
    [reply] = outgoing(conversation)
    client.force_login(outsider.user)

    r = client.post(retry_url(reply))

    assert r.status_code == 404
    reply.refresh_from_db()
    assert reply.delivery_state == "failed"


# --- the contact answers ---


def test_the_contacts_answer_to_the_reply_address_lands_in_the_same_conversation(
    send, agent, conversation, mail_server
):
    send(agent, conversation)
    [(_, mail)] = mail_server.messages
    reply_to = mail["Reply-To"]
    answer = raw_mail(
        to=reply_to, message_id="<answer1@customer.example>", subject="Thanks!", body="Got it.\n"
    )

    ingest_inbound(spool(answer, reply_to))

    with scopes_disabled():
        answered = Message.objects.get(message_id="answer1@customer.example")
    assert answered.conversation_id == conversation.pk
    assert answered.threaded_by == Message.ThreadedBy.REPLY_TOKEN


def test_an_answer_naming_the_reply_in_in_reply_to_lands_in_the_same_conversation(
    send, agent, conversation, mail_server
):
    send(agent, conversation)
    [reply] = outgoing(conversation)
    to = address_of(conversation.inbox)
    answer = raw_mail(
        to=to,
        message_id="<answer2@customer.example>",
        subject="Something else entirely",
        headers=f"In-Reply-To: <{reply.message_id}>",
    )

    ingest_inbound(spool(answer, to))

    with scopes_disabled():
        answered = Message.objects.get(message_id="answer2@customer.example")
    assert answered.conversation_id == conversation.pk
    assert answered.threaded_by == Message.ThreadedBy.IN_REPLY_TO


def test_an_htmx_send_swaps_in_a_fresh_composer_and_appends_the_reply_and_activity(
    send, agent, conversation, mail_server
):
    r = send(agent, conversation, headers={"HX-Request": "true"})

    [reply] = outgoing(conversation)
    assert r.status_code == 200 and "HX-Redirect" not in r.headers
    composer = r.text.split('<section class="card composer" id="composer"', 1)[1].split("</section>", 1)[0]
    assert '<textarea id="reply-body" name="body" rows="6" required></textarea>' in composer
    appended = r.text.split('<ol hx-swap-oob="beforeend:ol.thread"><li>', 1)[1]
    assert appended.lstrip().startswith(f'<article class="card message" id="message-{reply.pk}"')
    assert "Your parcel left our warehouse this morning." in appended
    assert 'id="activity" aria-labelledby="activity-title" hx-swap-oob="true"' in r.text
    assert "Bob Agent sent a reply" in r.text


# --- the sweep: a reply whose task was lost (DESIGN "Durability") ---


def test_a_queued_reply_whose_task_was_lost_is_sent_by_the_sweep(client, agent, conversation, mail_server):
    client.force_login(agent.user)
    client.post(reply_url(conversation), {"body": "Sent while Redis was down."})  # no commit: no task
    [reply] = outgoing(conversation)
    assert sweep_replies_task() == 0  # a minute's grace: its own task may still be on its way
    with scopes_disabled():
        Message.objects.filter(pk=reply.pk).update(created_at=reply.created_at - timedelta(minutes=2))

    assert sweep_replies_task() == 1

    [(_, mail)] = mail_server.messages
    assert mail["Message-ID"] == f"<{reply.message_id}>"
    reply.refresh_from_db()
    assert (reply.delivery_state, reply.delivery_attempts) == ("sent", 1)
    assert sweep_replies_task() == 0 and len(mail_server.messages) == 1


def test_the_sweep_is_scheduled_every_minute(settings):
    assert settings.CELERY_BEAT_SCHEDULE["sweep-replies"] == {
        "task": "inboxes.tasks.sweep_replies_task",
        "schedule": 60.0,
    }


def test_a_free_seat_is_offered_no_retry_on_a_conversation_someone_else_has(
    client, send, agent, free_agent, conversation, mail_server
):
    mail_server.rcpt_answer = USER_UNKNOWN
    send(agent, conversation)
    [reply] = outgoing(conversation)
    with scopes_disabled():
        Conversation.objects.filter(pk=conversation.pk).update(assignee=agent)
    thread = reverse("inboxes:thread", args=[conversation.account.subdomain, conversation.pk])

    client.force_login(free_agent.user)
    assert f'action="{retry_url(reply)}"' not in client.get(thread).text
    assert client.post(retry_url(reply)).status_code == 403
    client.force_login(agent.user)
    assert f'action="{retry_url(reply)}"' in client.get(thread).text
