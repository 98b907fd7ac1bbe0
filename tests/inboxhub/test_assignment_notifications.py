"""A member is mailed about a conversation assigned to them while away or not signed in (issue 17).

Mail goes through the real outbound path (an OutboundEmail row, the delivery
task, Django's SMTP backend) to a real SMTP server on loopback.
"""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import Client
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from inboxes.models import Contact, Conversation, Message
from inboxes.notifications import assignment_mail_paused
from inboxes.services import assign_conversation
from inboxhub.celery import app as celery_app
from inboxhub.lib.env import env_url
from inboxhub.models import Account, AuditEntry, Membership, OutboundEmail
from inboxhub.notifications import SIGNED_IN_WINDOW
from routing.models import AssignmentRule
from routing.services import route_new_conversation
from tests.factories import MembershipFactory

SITE = "https://inbox.example.com"
AWAY = Membership.Availability.AWAY


@pytest.fixture(autouse=True)
def eager(monkeypatch):
    """Queued mail is delivered in the test's process, as without REDIS_URL."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = SITE


@pytest.fixture
def inbox(admin):
    with scopes_disabled():
        return admin.account.inboxes.get(is_default=True)


@pytest.fixture
def conversation(admin, inbox) -> Conversation:
    with scopes_disabled():
        contact = Contact.objects.create(account=admin.account, email="carol@customer.example", name="Carol")
        return Conversation.objects.create(
            account=admin.account, inbox=inbox, contact=contact, subject="Refund for order 1182"
        )


@pytest.fixture
def as_admin(admin) -> Client:
    client = Client()
    client.force_login(admin.user)
    return client


@pytest.fixture
def as_agent(agent) -> Client:
    client = Client()
    client.force_login(agent.user)
    return client


def set_member(member: Membership, **fields) -> None:
    with scopes_disabled():
        Membership.objects.filter(pk=member.pk).update(**fields)


def fresh(member: Membership) -> Membership:
    with scopes_disabled():
        return Membership.objects.get(pk=member.pk)


def any_page(member: Membership) -> str:
    """A page of the member's account; every one of them marks the member as seen."""
    return f"/a/{member.account.subdomain}/notifications/"


def assign_url(conversation: Conversation) -> str:
    return f"/a/{conversation.account.subdomain}/inbox/c/{conversation.pk}/assign/"


def thread_url(conversation: Conversation) -> str:
    return f"/a/{conversation.account.subdomain}/inbox/c/{conversation.pk}/"


def emails(account) -> list[OutboundEmail]:
    with scopes_disabled():
        return list(OutboundEmail.objects.filter(account=account, kind="assignment_notification"))


@pytest.fixture
def assign(as_admin, django_capture_on_commit_callbacks):
    """Alice assigns through the thread page; commit callbacks (the mail's delivery) run."""

    def post(conversation, data, client=None):
        with django_capture_on_commit_callbacks(execute=True):
            return (client or as_admin).post(assign_url(conversation), data)

    return post


# --- who is mailed ---


def test_an_away_agent_gets_a_plain_text_mail_naming_the_conversation_and_who_assigned_it(
    assign, agent, conversation, mail_server
):
    set_member(agent, availability=AWAY)

    assign(conversation, {"assignee": agent.pk})

    [(rcpt_tos, message)] = mail_server.messages
    assert rcpt_tos == ["bob@alpha.example"]
    assert message["To"] == "bob@alpha.example"
    assert message["Subject"] == "Assigned to you: Refund for order 1182"
    assert message["Auto-Submitted"] == "auto-generated"  # RFC 3834: no vacation reply comes back
    assert message.get_content_type() == "text/plain"
    body = message.get_content()
    assert "Hi Bob," in body
    assert "Alice Admin assigned you a conversation in Inbox (Alpha):" in body
    assert "Subject: Refund for order 1182" in body
    assert "Contact: Carol <carol@customer.example>" in body
    assert f"Open it: {SITE}/a/alpha/inbox/c/{conversation.pk}/" in body
    assert "because you were away when it was assigned to you" in body
    assert f"{SITE}/a/alpha/notifications/" in body
    [email] = emails(agent.account)
    assert (email.state, email.to) == ("sent", "bob@alpha.example")


def test_an_available_agent_who_never_signed_in_is_mailed_that_they_were_not_signed_in(
    assign, agent, conversation, mail_server
):
    assign(conversation, {"assignee": agent.pk})

    [(_, message)] = mail_server.messages
    assert "because you were not signed in to InboxHub when it was assigned to you" in message.get_content()


def test_an_available_agent_working_in_the_inbox_gets_no_mail(
    assign, as_agent, agent, conversation, mail_server
):
    as_agent.get(any_page(agent))

    assign(conversation, {"assignee": agent.pk})

    assert mail_server.messages == []
    assert emails(agent.account) == []
    with scopes_disabled():
        assert Conversation.objects.get(pk=conversation.pk).assignee == agent


def test_an_agent_seen_within_the_window_is_signed_in_and_one_quiet_for_longer_is_not(
    assign, as_agent, agent, inbox, conversation, mail_server
):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        as_agent.get(any_page(agent))
    with time_machine.travel(start + SIGNED_IN_WINDOW - timedelta(seconds=30), tick=False):
        assign(conversation, {"assignee": agent.pk})
    assert mail_server.messages == []

    with scopes_disabled():
        later = Conversation.objects.create(
            account=inbox.account, inbox=inbox, contact=conversation.contact, subject="Still waiting"
        )
    with time_machine.travel(start + SIGNED_IN_WINDOW + timedelta(seconds=30), tick=False):
        assign(later, {"assignee": agent.pk})
    [(_, message)] = mail_server.messages
    assert message["Subject"] == "Assigned to you: Still waiting"


def test_signing_out_counts_as_not_signed_in_at_once(assign, as_agent, agent, conversation, mail_server):
    as_agent.get(any_page(agent))
    as_agent.post("/logout/")
    assert fresh(agent).last_seen_at is None

    assign(conversation, {"assignee": agent.pk})

    [(rcpt_tos, _)] = mail_server.messages
    assert rcpt_tos == ["bob@alpha.example"]


def test_an_agent_who_turned_the_mail_off_gets_none_even_when_away(assign, agent, conversation, mail_server):
    set_member(agent, availability=AWAY, notify_on_assignment=False)

    assign(conversation, {"assignee": agent.pk})

    assert mail_server.messages == []
    assert emails(agent.account) == []


def test_taking_a_conversation_yourself_while_away_sends_no_mail(
    assign, as_agent, agent, conversation, mail_server
):
    set_member(agent, availability=AWAY)

    assign(conversation, {"to": "me"}, client=as_agent)

    assert mail_server.messages == []
    with scopes_disabled():
        assert Conversation.objects.get(pk=conversation.pk).assignee == agent


def test_unassigning_and_assigning_again_to_the_same_member_mail_only_the_first_time(
    assign, agent, conversation, mail_server
):
    set_member(agent, availability=AWAY)
    assign(conversation, {"assignee": agent.pk})
    assign(conversation, {"assignee": agent.pk})  # no change: no second mail
    assign(conversation, {"assignee": ""})  # unassigned: no mail

    assert len(mail_server.messages) == 1
    assert len(emails(agent.account)) == 1


def test_the_mail_leaves_only_after_the_assignment_commits(
    as_admin, agent, conversation, mail_server, django_capture_on_commit_callbacks
):
    set_member(agent, availability=AWAY)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        as_admin.post(assign_url(conversation), {"assignee": agent.pk})

    assert mail_server.messages == []  # still inside the (test's) transaction
    [email] = emails(agent.account)
    assert email.state == "queued"
    for callback in callbacks:
        callback()
    assert len(mail_server.messages) == 1


def test_an_assignment_that_rolls_back_leaves_no_mail(agent, admin, conversation, mail_server):
    set_member(agent, availability=AWAY)
    with pytest.raises(RuntimeError), scope(account=admin.account), transaction.atomic():
        assign_conversation(conversation, fresh(agent), by=admin)
        raise RuntimeError("the request failed after assigning")

    assert emails(admin.account) == []
    assert mail_server.messages == []


def test_an_account_whose_founder_has_not_confirmed_their_address_sends_no_assignment_mail(
    assign, admin, agent, conversation, mail_server
):
    with scopes_disabled():
        Account.objects.filter(pk=admin.account_id).update(unverified_founder=admin.user)
    set_member(agent, availability=AWAY)

    assign(conversation, {"assignee": agent.pk})

    assert mail_server.messages == []


def test_assignments_replayed_while_mail_is_paused_mail_nobody(agent, admin, conversation, mail_server):
    set_member(agent, availability=AWAY)
    with assignment_mail_paused(), scope(account=admin.account):
        assign_conversation(conversation, fresh(agent), by=admin)

    assert emails(admin.account) == []


# --- what the mail may carry ---


def test_a_subject_and_contact_name_with_line_breaks_cannot_add_headers_or_recipients(
    assign, agent, conversation, mail_server
):
    with scopes_disabled():
        Conversation.objects.filter(pk=conversation.pk).update(
            subject="Refund\r\nBcc: victim@evil.example\r\n\r\nInjected body"
        )
        Contact.objects.filter(pk=conversation.contact_id).update(name="Carol\nX-Evil: 1")
    set_member(agent, availability=AWAY)

    assign(conversation, {"assignee": agent.pk})

    [(rcpt_tos, message)] = mail_server.messages
    assert rcpt_tos == ["bob@alpha.example"]
    assert message["Subject"] == "Assigned to you: Refund Bcc: victim@evil.example Injected body"
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert "Contact: Carol X-Evil: 1 <carol@customer.example>" in message.get_content()


def test_the_mail_carries_no_message_body_of_the_customer(assign, agent, inbox, conversation, mail_server):
    with scopes_disabled():
        Message.objects.create(
            account=inbox.account,
            inbox=inbox,
            conversation=conversation,
            text="Secret order details",
            html='<p>Secret order details</p><img src="https://tracker.example/pixel">',
        )
    set_member(agent, availability=AWAY)

    assign(conversation, {"assignee": agent.pk})

    [(_, message)] = mail_server.messages
    assert not message.is_multipart() and message.get_content_type() == "text/plain"
    assert "Secret order details" not in message.get_content()
    assert "tracker.example" not in message.get_content()


# --- automatic assignment ---


@pytest.fixture
def rule(admin, inbox, agent):
    with scopes_disabled():
        rule = AssignmentRule.objects.create(
            account=admin.account, inbox=inbox, enabled=True, only_available=True
        )
        rule.members.set([agent])
        return rule


def route(conversation, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks(execute=True)
    with capture, scope(account=conversation.account), transaction.atomic():
        return route_new_conversation(conversation)


def test_automatic_assignment_to_an_agent_not_signed_in_mails_them_with_its_reason(
    rule, agent, conversation, mail_server, django_capture_on_commit_callbacks
):
    decision = route(conversation, django_capture_on_commit_callbacks)

    assert decision.chosen == agent
    [(rcpt_tos, message)] = mail_server.messages
    assert rcpt_tos == ["bob@alpha.example"]
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Subject"] == "Assigned to you: Refund for order 1182"
    body = message.get_content()
    assert "Automatic assignment gave you a conversation in Inbox (Alpha):" in body
    assert f"Why: {decision.summary}" in body
    assert f"Open it: {SITE}/a/alpha/inbox/c/{conversation.pk}/" in body


def test_automatic_assignment_to_an_agent_signed_in_sends_nothing(
    rule, as_agent, agent, conversation, mail_server, django_capture_on_commit_callbacks
):
    as_agent.get(any_page(agent))

    assert route(conversation, django_capture_on_commit_callbacks).chosen == agent
    assert mail_server.messages == []


def test_an_away_contact_owner_given_the_conversation_gets_one_mail_not_two(
    rule, agent, conversation, mail_server, django_capture_on_commit_callbacks
):
    with scopes_disabled():
        AssignmentRule.objects.filter(pk=rule.pk).update(
            assign_to=AssignmentRule.AssignTo.CONTACT_OWNER, only_available=False
        )
        Contact.objects.filter(pk=conversation.contact_id).update(owner=agent)
    set_member(agent, availability=AWAY)

    assert route(conversation, django_capture_on_commit_callbacks).chosen == agent

    [(rcpt_tos, message)] = mail_server.messages
    assert rcpt_tos == ["bob@alpha.example"]
    assert message["Subject"].startswith("New message from Carol")  # D6's mail says it all


# --- "signed in": stamped at most once a minute ---


def test_requests_stamp_the_member_as_seen_at_most_once_a_minute(as_agent, agent):
    start = timezone.now().replace(microsecond=0)
    inbox_page = any_page(agent)
    with time_machine.travel(start, tick=False):
        as_agent.get(inbox_page)
    with time_machine.travel(start + timedelta(seconds=50), tick=False):
        as_agent.get(inbox_page)
    assert fresh(agent).last_seen_at == start
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        as_agent.get(inbox_page)
    assert fresh(agent).last_seen_at == start + timedelta(seconds=61)


def test_being_seen_in_one_account_is_not_being_signed_in_in_another(as_agent, agent, outsider):
    other = MembershipFactory(account=outsider.account, user=agent.user, username="bob")
    as_agent.get(any_page(agent))
    assert fresh(agent).last_seen_at is not None
    assert fresh(other).last_seen_at is None


# --- the setting page ---


def notifications_url(member: Membership) -> str:
    return f"/a/{member.account.subdomain}/notifications/"


def test_the_notifications_page_shows_the_setting_on_by_default(as_agent, agent):
    r = as_agent.get(notifications_url(agent))

    assert r.status_code == 200
    assert "<h1>Notifications</h1>" in r.text
    assert 'name="notify_on_assignment"' in r.text and "checked" in r.text
    assert "Email me when a conversation is assigned to me while I am away or not signed in" in r.text


def test_an_agent_turns_assignment_mail_off_and_on_again(as_agent, agent):
    r = as_agent.post(notifications_url(agent), {}, follow=True)
    assert "Saved: assignment emails are off." in r.text
    assert fresh(agent).notify_on_assignment is False
    assert "checked" not in r.text.split('name="notify_on_assignment"')[1].split(">")[0]

    as_agent.post(notifications_url(agent), {"notify_on_assignment": "on"})
    assert fresh(agent).notify_on_assignment is True
    with scopes_disabled():
        entries = list(
            AuditEntry.objects.filter(action="assignment_notifications_set").order_by("created_at", "pk")
        )
    assert [(e.actor_id, e.details) for e in entries] == [
        (agent.pk, {"enabled": False}),
        (agent.pk, {"enabled": True}),
    ]


def test_the_setting_is_per_member_and_one_members_change_leaves_the_others(as_agent, agent, admin):
    as_agent.post(notifications_url(agent), {})
    assert fresh(agent).notify_on_assignment is False
    assert fresh(admin).notify_on_assignment is True


def test_the_user_menu_links_to_the_notifications_page(as_agent, agent):
    r = as_agent.get(any_page(agent))
    assert f'href="{notifications_url(agent)}">Notifications</a>' in r.text


def test_an_outsider_gets_404_and_the_setting_stays_on(agent, outsider):
    client = Client()
    client.force_login(outsider.user)
    r = client.post(notifications_url(agent), {})
    assert r.status_code == 404
    assert fresh(agent).notify_on_assignment is True


def test_a_post_without_the_csrf_token_is_refused(agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent.user)
    r = client.post(notifications_url(agent), {})
    assert r.status_code == 403
    assert fresh(agent).notify_on_assignment is True


def test_signed_out_visitors_are_sent_to_the_login_page(client, agent):
    r = client.get(notifications_url(agent))
    assert r.status_code == 302 and r.url.startswith("/login/")


# --- SITE_URL ---


@pytest.mark.parametrize("value", ["inbox.example.com", "ftp://inbox.example.com", "https://", "https://a b"])
def test_a_site_url_that_is_not_an_http_address_stops_start_up_naming_it(monkeypatch, value):
    monkeypatch.setenv("SITE_URL", value)
    with pytest.raises(ImproperlyConfigured, match="SITE_URL"):
        env_url("SITE_URL", "http://127.0.0.1:8000")


def test_a_site_url_loses_its_trailing_slash(monkeypatch):
    monkeypatch.setenv("SITE_URL", "https://inbox.example.com/")
    assert env_url("SITE_URL", "http://127.0.0.1:8000") == "https://inbox.example.com"


def test_a_page_answered_404_does_not_count_as_being_signed_in(as_agent, agent, outsider):
    with scopes_disabled():
        foreign_conversation_id = Conversation.objects.filter(account=outsider.account).count() + 10**6
    r = as_agent.get(f"/a/{agent.account.subdomain}/inbox/c/{foreign_conversation_id}/")
    assert r.status_code == 404
    assert fresh(agent).last_seen_at is None


def test_setting_oneself_available_hands_over_the_backlog_without_mailing_oneself(
    transactional_db, rule, as_agent, agent, conversation, mail_server
):
    # Real commits: the backlog runs inside the request, as in production, before the request ends.
    set_member(agent, availability=AWAY)
    as_agent.post(f"/a/{agent.account.subdomain}/availability/", {"availability": "available"})

    with scopes_disabled():
        assert Conversation.objects.get(pk=conversation.pk).assignee == agent  # the backlog ran
    assert mail_server.messages == []
