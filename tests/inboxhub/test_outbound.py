"""Invites and address verifications leave through a worker and a real SMTP server; failures show."""

import re
import smtplib
from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from inboxhub.celery import app as celery_app
from inboxhub.models import OutboundEmail
from inboxhub.outbound import DELIVER_TASK, SWEEP_TASK, describe_error
from inboxhub.tasks import deliver_outbound_email, sweep_outbound_task
from tests.channels_conn.conftest import free_port
from tests.smarthost import use_smarthost

MEMBERS = "/a/alpha/settings/members/"
USER_UNKNOWN = "550 5.1.1 <dee@alpha.example>: Recipient address rejected: User unknown"
GREYLISTED = "451 4.7.1 Greylisted, please try again later"


@pytest.fixture(autouse=True)
def eager(monkeypatch):
    """Queued mail is delivered in the test's process, as without REDIS_URL."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)


@pytest.fixture
def signed_in(client, admin):
    client.force_login(admin.user)
    return client


@pytest.fixture
def invite(signed_in, django_capture_on_commit_callbacks):
    """Add Dee Dev by invite through the Members page; the queued mail is delivered after the commit."""

    def post(**data):
        fields = {
            "full_name": "Dee Dev",
            "email": "dee@alpha.example",
            "seat": "free",
            "permission": "agent",
            "how": "invite",
        }
        with django_capture_on_commit_callbacks(execute=True):
            return signed_in.post(f"{MEMBERS}add/", {**fields, **data}, follow=True)

    return post


def outbound_emails(account) -> list[OutboundEmail]:
    with scopes_disabled():
        return list(OutboundEmail.objects.filter(account=account).order_by("pk"))


def test_an_invite_reaches_the_mail_server_and_is_marked_sent(invite, admin, mail_server):
    invite()

    [(rcpt_tos, message)] = mail_server.messages
    assert rcpt_tos == ["dee@alpha.example"]
    assert message["To"] == "dee@alpha.example"
    assert message["Subject"] == "Alice Admin invited you to Alpha on InboxHub"
    assert message["Auto-Submitted"] == "auto-generated"  # RFC 3834: no auto-reply comes back
    assert re.search(r"http://testserver/invite/[\w-]+/[\w-]+/", message.get_content())
    [email] = outbound_emails(admin.account)
    assert (email.kind, email.state, email.attempts, email.error) == ("invite", "sent", 1, "")
    assert email.sent_at is not None


def test_adding_a_member_by_invite_says_the_link_is_on_its_way_not_that_it_was_sent(
    signed_in, admin, mail_server
):
    # No commit callbacks run: the page is what the admin sees before any worker has the mail.
    r = signed_in.post(
        f"{MEMBERS}add/",
        {
            "full_name": "Dee Dev",
            "email": "dee@alpha.example",
            "seat": "free",
            "permission": "agent",
            "how": "invite",
        },
        follow=True,
    )

    assert "Dee Dev is invited: a link is on its way to dee@alpha.example." in r.text
    assert "invite link sent" not in r.text
    assert mail_server.messages == []
    [email] = outbound_emails(admin.account)
    assert (email.to, email.state, email.attempts) == ("dee@alpha.example", "queued", 0)


def test_a_server_answering_451_then_250_gets_the_invite_on_the_second_attempt(invite, admin, mail_server):
    mail_server.data_answers = [GREYLISTED]

    invite()

    assert mail_server.attempts == 2
    [(rcpt_tos, message)] = mail_server.messages
    assert rcpt_tos == ["dee@alpha.example"]
    [email] = outbound_emails(admin.account)
    assert (email.state, email.attempts, email.error) == ("sent", 2, "")


def test_a_server_answering_550_fails_the_invite_and_the_members_page_shows_why(
    invite, signed_in, admin, mail_server
):
    mail_server.rcpt_answer = USER_UNKNOWN

    invite()
    page = signed_in.get(MEMBERS)

    [email] = outbound_emails(admin.account)
    assert (email.state, email.attempts, email.error) == ("failed", 1, USER_UNKNOWN)
    assert mail_server.messages == []
    notice = re.search(r'<div class="deliverability-problem" id="failed-invites".*?</div>', page.text, re.S)[
        0
    ]
    assert "These invites could not be delivered:" in notice
    assert f"<li>dee@alpha.example: {USER_UNKNOWN.replace('<', '&lt;').replace('>', '&gt;')}</li>" in notice


def test_a_server_answering_451_every_time_fails_the_invite_after_the_last_retry(
    invite, signed_in, admin, mail_server
):
    mail_server.data_answers = [GREYLISTED] * 10

    invite()

    [email] = outbound_emails(admin.account)
    assert (email.state, email.attempts, email.error) == ("failed", 6, GREYLISTED)
    assert mail_server.attempts == 6
    assert f"dee@alpha.example: {GREYLISTED}" in signed_in.get(MEMBERS).text


def test_a_mail_server_that_is_down_is_retried_then_the_invite_fails_with_the_connection_error(
    invite, signed_in, admin, settings
):
    use_smarthost(settings, free_port())  # nothing listens there

    invite()

    [email] = outbound_emails(admin.account)
    assert (email.state, email.attempts) == ("failed", 6)
    assert "Connection refused" in email.error
    assert "dee@alpha.example: [Errno 111] Connection refused" in signed_in.get(MEMBERS).text


def test_a_failed_invite_is_no_longer_listed_once_the_member_has_set_a_password(
    invite, signed_in, admin, mail_server
):
    mail_server.rcpt_answer = USER_UNKNOWN
    invite()

    with scopes_disabled():
        user = admin.account.memberships.get(user__email="dee@alpha.example").user
    user.set_password("saffron-meadow-77")
    user.save(update_fields=["password"])

    assert 'id="failed-invites"' not in signed_in.get(MEMBERS).text


def test_a_sent_mail_is_not_sent_again_when_its_task_runs_twice(invite, admin, mail_server):
    invite()
    [email] = outbound_emails(admin.account)

    result = deliver_outbound_email.apply(args=(email.pk, admin.account_id))

    assert result.result == "skipped"  # not .get(): another thread of this process may be inside a task
    assert len(mail_server.messages) == 1
    assert outbound_emails(admin.account)[0].attempts == 1


def test_a_mail_another_worker_is_sending_is_skipped(admin, mail_server):
    with scopes_disabled():
        email = OutboundEmail.objects.create(
            account=admin.account,
            kind="invite",
            to="dee@alpha.example",
            subject="Hi",
            body="Hello",
            state="sending",
            claimed_at=timezone.now(),
        )

    assert deliver_outbound_email.apply(args=(email.pk, admin.account_id)).result == "skipped"
    assert mail_server.messages == []


def test_a_claim_older_than_the_time_limit_is_taken_over_and_the_mail_sent(admin, mail_server, settings):
    abandoned = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    with scopes_disabled():
        email = OutboundEmail.objects.create(
            account=admin.account,
            kind="invite",
            to="dee@alpha.example",
            subject="Hi",
            body="Hello",
            state="sending",
            claimed_at=abandoned,
            attempts=1,
        )

    assert deliver_outbound_email.apply(args=(email.pk, admin.account_id)).result == "sent"
    assert [rcpt for rcpt, _ in mail_server.messages] == [["dee@alpha.example"]]
    assert outbound_emails(admin.account)[0].attempts == 2


def test_the_delivery_task_is_registered_in_every_process_that_queues_mail():
    # Without it, task_always_eager would publish to a broker nobody reads instead of sending.
    assert DELIVER_TASK in celery_app.tasks


def test_the_recorded_error_never_carries_the_smarthost_credentials(settings):
    settings.EMAIL_HOST_PASSWORD = "hunter2-secret"

    assert describe_error(OSError("cannot reach smtp://mailer:hunter2-secret@relay.example")) == (
        "cannot reach smtp://mailer:***@relay.example"
    )
    assert describe_error(smtplib.SMTPAuthenticationError(535, b"5.7.8 bad hunter2-secret")) == (
        "535 5.7.8 bad ***"
    )


def test_an_outsider_gets_404_on_the_members_page_and_the_failed_invite_stays_as_it_was(
    invite, client, admin, outsider, mail_server
):
    mail_server.rcpt_answer = USER_UNKNOWN
    invite()
    client.force_login(outsider.user)

    assert client.get(MEMBERS).status_code == 404
    own_page = client.get(f"/a/{outsider.account.subdomain}/settings/members/")
    assert own_page.status_code == 200 and "dee@alpha.example" not in own_page.text
    [email] = outbound_emails(admin.account)
    assert (email.state, email.error) == ("failed", USER_UNKNOWN)


def test_the_sweep_hands_on_a_mail_whose_task_never_reached_a_worker(admin, mail_server):
    with scopes_disabled():
        lost = OutboundEmail.objects.create(
            account=admin.account, kind="invite", to="dee@alpha.example", subject="Hi", body="Hello"
        )
        OutboundEmail.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=5))
        just_queued = OutboundEmail.objects.create(
            account=admin.account, kind="invite", to="eve@alpha.example", subject="Hi", body="Hello"
        )

    assert sweep_outbound_task.apply().result == 1
    assert [rcpt for rcpt, _ in mail_server.messages] == [["dee@alpha.example"]]
    states = {email.pk: email.state for email in outbound_emails(admin.account)}
    assert states == {lost.pk: "sent", just_queued.pk: "queued"}


def test_the_sweep_leaves_a_mail_waiting_for_its_retry_alone(admin, mail_server):
    with scopes_disabled():
        OutboundEmail.objects.create(
            account=admin.account,
            kind="invite",
            to="dee@alpha.example",
            subject="Hi",
            body="Hello",
            attempts=2,
            claimed_at=timezone.now() - timedelta(minutes=3),
            created_at=timezone.now() - timedelta(minutes=10),
        )

    assert sweep_outbound_task.apply().result == 0
    assert mail_server.messages == []


def test_the_outbound_sweep_runs_every_minute():
    entry = celery_app.conf.beat_schedule["sweep-outbound"]
    assert entry["schedule"] == 60.0
    assert celery_app.tasks[entry["task"]].name == sweep_outbound_task.name == SWEEP_TASK
