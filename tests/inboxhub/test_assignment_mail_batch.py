"""The assignment mails of one batch of decisions leave together: one task, one SMTP connection (issue 18).

Each mail is still its own row with its own outcome: sent once, a temporary
failure tried again on its own, a refusal recorded with the server's words.
A real SMTP server on loopback stands in for the smarthost.
"""

import pytest
from django.db import transaction
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from inboxes.models import Contact, Conversation
from inboxhub.celery import app as celery_app
from inboxhub.models import OutboundEmail
from inboxhub.outbound import DELIVER_BATCH_TASK
from inboxhub.tasks import deliver_outbound_emails
from routing.models import AssignmentRule
from routing.services import route_waiting
from tests.channels_conn.conftest import free_port
from tests.factories import MembershipFactory
from tests.smarthost import Smarthost, smarthost, use_smarthost

AGENTS = ["bob@alpha.example", "dee@alpha.example", "eve@alpha.example"]
USER_UNKNOWN = "550 5.1.1 <dee@alpha.example>: Recipient address rejected: User unknown"
GREYLISTED = "451 4.7.1 Greylisted, please try again later"


@pytest.fixture(autouse=True)
def eager(monkeypatch):
    """Queued mail is delivered in the test's process, as without REDIS_URL."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)


class Recorder(Smarthost):
    """Also notes each DATA's client address (one per connection) and refuses `refused` at RCPT."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list = []
        self.refused: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook name
        if address in self.refused:
            return USER_UNKNOWN
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def server(settings):
    with smarthost(settings, Recorder()) as handler:
        yield handler


@pytest.fixture
def inbox(admin):
    with scopes_disabled():
        return admin.account.inboxes.get(is_default=True)


@pytest.fixture
def three_waiting(admin, inbox):
    """Three agents none of whom is signed in, an automatic rule over them, three new conversations."""
    agents = [
        MembershipFactory(
            account=admin.account, user__email=email, user__full_name=email.split("@")[0].title()
        )
        for email in AGENTS
    ]
    with scopes_disabled():
        rule = AssignmentRule.objects.create(account=admin.account, inbox=inbox, enabled=True)
        rule.members.set(agents)
        for n in range(3):
            contact = Contact.objects.create(account=admin.account, email=f"customer{n}@example.net")
            Conversation.objects.create(
                account=admin.account, inbox=inbox, contact=contact, subject=f"Order {n}"
            )
    return agents


def assign_waiting(admin, inbox, django_capture_on_commit_callbacks):
    """Decide the inbox's waiting conversations as the ingest pipeline does; the mails leave on commit."""
    with (
        django_capture_on_commit_callbacks(execute=True),
        scope(account=admin.account),
        transaction.atomic(),
    ):
        return route_waiting(admin.account_id, inbox.pk)


def assignment_mails(account) -> list[OutboundEmail]:
    with scopes_disabled():
        return list(
            OutboundEmail.objects.filter(account=account, kind="assignment_notification").order_by("pk")
        )


def recipients(server: Recorder) -> list[str]:
    return sorted(rcpt for rcpt_tos, _ in server.messages for rcpt in rcpt_tos)


def test_each_assignment_of_a_batch_is_mailed_once_over_one_connection(
    admin, inbox, three_waiting, server, django_capture_on_commit_callbacks
):
    decisions = assign_waiting(admin, inbox, django_capture_on_commit_callbacks)

    assert sorted(d.chosen.user.email for d in decisions) == AGENTS
    assert recipients(server) == AGENTS
    assert len(set(server.peers)) == 1
    subjects = sorted(message["Subject"] for _, message in server.messages)
    assert subjects == ["Assigned to you: Order 0", "Assigned to you: Order 1", "Assigned to you: Order 2"]
    assert [(m.state, m.attempts, m.error) for m in assignment_mails(admin.account)] == [("sent", 1, "")] * 3


def test_a_greylisted_mail_is_tried_again_on_its_own_and_the_others_are_sent_once(
    admin, inbox, three_waiting, server, django_capture_on_commit_callbacks
):
    server.data_answers = [GREYLISTED]

    assign_waiting(admin, inbox, django_capture_on_commit_callbacks)

    assert recipients(server) == AGENTS
    mails = assignment_mails(admin.account)
    assert [m.state for m in mails] == ["sent"] * 3
    assert sorted(m.attempts for m in mails) == [1, 1, 2]


def test_a_refused_recipient_fails_with_the_servers_words_and_the_others_are_sent(
    admin, inbox, three_waiting, server, django_capture_on_commit_callbacks
):
    server.refused = {"dee@alpha.example"}

    assign_waiting(admin, inbox, django_capture_on_commit_callbacks)

    assert recipients(server) == ["bob@alpha.example", "eve@alpha.example"]
    outcome = {m.to: (m.state, m.attempts, m.error) for m in assignment_mails(admin.account)}
    assert outcome == {
        "bob@alpha.example": ("sent", 1, ""),
        "dee@alpha.example": ("failed", 1, USER_UNKNOWN),
        "eve@alpha.example": ("sent", 1, ""),
    }


def test_a_mail_server_that_is_down_leaves_each_mail_failed_after_its_retries(
    admin, inbox, three_waiting, settings, django_capture_on_commit_callbacks
):
    use_smarthost(settings, free_port())  # nothing listens there

    assign_waiting(admin, inbox, django_capture_on_commit_callbacks)

    mails = assignment_mails(admin.account)
    assert [(m.state, m.attempts) for m in mails] == [("failed", 6)] * 3
    assert all("Connection refused" in m.error for m in mails)


def test_the_batch_task_run_again_sends_nothing_twice(
    admin, inbox, three_waiting, server, django_capture_on_commit_callbacks
):
    assign_waiting(admin, inbox, django_capture_on_commit_callbacks)
    ids = [m.pk for m in assignment_mails(admin.account)]

    assert deliver_outbound_emails.apply(args=(ids, admin.account_id)).result == {}
    assert recipients(server) == AGENTS
    assert [m.attempts for m in assignment_mails(admin.account)] == [1, 1, 1]


def test_a_mail_another_worker_is_sending_is_left_to_it(admin, server):
    with scopes_disabled():
        sending, queued = (
            OutboundEmail.objects.create(
                account=admin.account, kind="invite", to=to, subject="Hi", body="Hello", **fields
            )
            for to, fields in [
                ("bob@alpha.example", {"state": "sending", "claimed_at": timezone.now()}),
                ("dee@alpha.example", {}),
            ]
        )

    assert deliver_outbound_emails.apply(args=([sending.pk, queued.pk], admin.account_id)).result == {
        "sent": 1
    }
    assert recipients(server) == ["dee@alpha.example"]


def test_a_batch_task_with_another_accounts_ids_sends_none_of_them(admin, outsider, server):
    with scopes_disabled():
        theirs = OutboundEmail.objects.create(
            account=outsider.account, kind="invite", to="x@bravo.example", subject="Hi", body="Hello"
        )

    assert deliver_outbound_emails.apply(args=([theirs.pk], admin.account_id)).result == {}
    assert server.messages == []


def test_an_assignment_batch_that_rolls_back_mails_nobody(
    admin, inbox, three_waiting, server, django_capture_on_commit_callbacks
):
    with (
        pytest.raises(RuntimeError),
        django_capture_on_commit_callbacks(execute=True),
        scope(account=admin.account),
        transaction.atomic(),
    ):
        route_waiting(admin.account_id, inbox.pk)
        raise RuntimeError("the worker failed after deciding")

    assert assignment_mails(admin.account) == []
    assert server.messages == []


def test_the_batch_delivery_task_is_registered_in_every_process_that_queues_mail():
    assert DELIVER_BATCH_TASK in celery_app.tasks
