"""Every confirmation a settings page gives, proved with real mail (issue 14, point 7).

Each test changes a setting through its page, as an admin would, then sends mail over SMTP
to the real ingress (tasks run in place, as without REDIS_URL) or replies through the
composer to a real capture smarthost, and checks what the page promised. One test per
promise, named after it; the page's words are in each docstring.
"""

import html
import ipaddress
import re
import smtplib
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from inboxes.models import Contact, Conversation, Inbox
from inboxhub.celery import app as celery_app
from inboxhub.models import Membership
from ingest.pipeline import process_inbound_message
from routing.models import AssignmentRule
from tests.channels_conn.conftest import start_smtp  # noqa: F401 - the fixture
from tests.inboxes.helpers import address_of, spool
from tests.inboxes.inbox_settings_helpers import make_member, make_team
from tests.smarthost import smarthost
from tickets.models import Pipeline, Ticket

SAMPLES = Path(__file__).parents[1] / "channels_conn" / "samples"
CAROL = "carol@customer.example"
AWAY = Membership.Availability.AWAY


@pytest.fixture(autouse=True)
def eager(monkeypatch):
    """Ingest, assignment and outbound mail run in place, as without REDIS_URL."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)


@pytest.fixture
def ingress(start_smtp):  # noqa: F811 - the fixture imported above
    """The real SMTP ingress on a free port."""
    return start_smtp()


@pytest.fixture
def outbox(settings):
    """The outbound smarthost: a real SMTP server that keeps what it accepts."""
    with smarthost(settings) as handler:
        yield handler


@pytest.fixture
def ada(admin) -> Membership:
    return make_member(admin.account, "Ada Lovelace")


@pytest.fixture
def ben(admin) -> Membership:
    return make_member(admin.account, "Ben Okafor")


@pytest.fixture
def fay(admin) -> Membership:
    return make_member(admin.account, "Fay Free", seat=Membership.Seat.FREE)


@pytest.fixture
def as_admin(admin) -> Client:
    client = Client()
    client.force_login(admin.user)
    return client


# --- mail in, mail out ---


def send(server, to: str, *, subject: str = "Where is my order?", sender: str = CAROL, **headers) -> None:
    """One message over SMTP to the ingress; the pipeline has stored it when this returns."""
    message = EmailMessage()
    message["From"] = f"Carol Customer <{sender}>" if sender == CAROL else sender
    message["To"] = to
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Hello, my order has not arrived.\n")
    with smtplib.SMTP(server.hostname, server.port, timeout=10) as client:
        client.send_message(message, from_addr=sender, to_addrs=[to])


def send_raw(server, to: str, raw: bytes, *, mail_from: str) -> None:
    with smtplib.SMTP(server.hostname, server.port, timeout=10) as client:
        client.sendmail(mail_from, [to], raw)


def conversation(inbox: Inbox, subject: str = "Where is my order?") -> Conversation:
    with scopes_disabled():
        return Conversation.objects.select_related("contact", "assignee__user").get(
            inbox=inbox, subject=subject
        )


def conversations_of(inbox: Inbox) -> list[Conversation]:
    with scopes_disabled():
        return list(Conversation.objects.filter(inbox=inbox).order_by("created_at", "pk"))


def reply(member: Membership, conversation: Conversation, body: str = "Your parcel left this morning."):
    """Reply through the composer as `member`; the reply is delivered before this returns."""
    client = Client()
    client.force_login(member.user)
    url = reverse("inboxes:reply", args=[conversation.account.subdomain, conversation.pk])
    return client.post(url, {"body": body}, follow=True)


def sent_from(outbox) -> tuple[str, str]:
    """(display name, address) of the newest mail the smarthost accepted."""
    address = outbox.messages[-1][1]["From"].addresses[0]
    return address.display_name, address.addr_spec


def text_of(mail) -> str:
    return mail.get_body(preferencelist=("plain",)).get_content()


# --- the settings pages, as an admin uses them ---


def page_url(name: str, inbox: Inbox, *more) -> str:
    return reverse(name, args=[inbox.account.subdomain, inbox.pk, *more])


def configure(client, inbox: Inbox, **fields):
    """Save the Configuration tab with these fields (the rest as a new inbox has them)."""
    data = {
        "send_from": True,
        "from_name_mode": "agent_and_company",
        "company_name": "Alpha",
        "from_address_mode": "default",
        "custom_from_address": "",
        "signature_html": "",
        "select_original_sender": True,
    }
    data.update(fields)
    data = {name: ("on" if value is True else value) for name, value in data.items() if value is not False}
    r = client.post(page_url("fallback:configuration", inbox), data, follow=True)
    assert "Fallback address settings saved. Replies sent from this inbox from now on use them." in r.text
    return r


def automate(
    client, inbox: Inbox, *, assign_to="specific", members=(), teams=(), only_available=True, capacity=""
):
    data = {
        "enabled": "on",
        "assign_to": assign_to,
        "members": [m.pk for m in members],
        "teams": [t.pk for t in teams],
        "capacity": capacity,
    }
    if only_available:
        data["only_available"] = "on"
    r = client.post(page_url("automation:edit", inbox), data, follow=True)
    assert f"Automatic assignment for {inbox.name} was saved." in r.text
    return r


def ticket_settings(client, inbox: Inbox, *, stage="Waiting on us", priority="high", owner_mode, owner=None):
    with scopes_disabled():
        pipeline = Pipeline.objects.get(account=inbox.account)
        stage_pk = pipeline.stages.get(name=stage).pk
    data = {
        "create_tickets": "on",
        "pipeline": pipeline.pk,
        "stage": stage_pk,
        "priority": priority,
        "owner_mode": owner_mode,
        "owner": owner.pk if owner else "",
    }
    r = client.post(page_url("ticket_settings:edit", inbox), data, follow=True)
    assert f"Ticket settings for {inbox.name} were saved." in r.text
    return r


def ticket_of(conversation: Conversation) -> Ticket:
    with scopes_disabled():
        return Ticket.objects.select_related("pipeline", "stage", "owner").get(conversation=conversation)


def set_availability(member: Membership, availability: str) -> None:
    with scopes_disabled():
        Membership.objects.filter(pk=member.pk).update(availability=availability)


# === Inboxes page: channels (F2), new inboxes (E1), access (B5, B6) ===


def test_channel_off_mail_sent_to_it_is_refused_so_the_sender_gets_a_bounce(as_admin, inbox, ingress):
    """'While it is off, mail sent to <address> is refused: the sender gets a bounce, and the message
    neither appears in this inbox nor is logged to a contact.'"""
    with scopes_disabled():
        channel = inbox.channels.get()
    r = as_admin.post(
        page_url("inbox_settings:switch_channel", inbox, channel.pk), {"enabled": "false"}, follow=True
    )
    assert "Fallback email address is off: mail sent to it is refused." in r.text

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(ingress, address_of(inbox))

    code, answer = refused.value.recipients[address_of(inbox)]
    assert (code, answer[:6]) == (550, b"5.2.1 ")
    assert conversations_of(inbox) == []
    with scopes_disabled():
        assert not Contact.objects.filter(account=inbox.account, email=CAROL).exists()


def test_channel_off_nothing_can_be_sent_from_it(as_admin, admin, inbox, ingress, outbox):
    """'Off: mail sent to this address is refused, and nothing can be sent from it.'"""
    send(ingress, address_of(inbox))
    with scopes_disabled():
        channel = inbox.channels.get()
    as_admin.post(page_url("inbox_settings:switch_channel", inbox, channel.pk), {"enabled": "false"})

    r = reply(admin, conversation(inbox))

    assert "This inbox&#x27;s email channel is turned off, so nothing can be sent from it." in r.text
    assert outbox.messages == []


def test_channel_off_conversations_already_in_the_inbox_stay(as_admin, inbox, ingress):
    """'Conversations already in the inbox stay.'"""
    send(ingress, address_of(inbox))
    with scopes_disabled():
        channel = inbox.channels.get()

    as_admin.post(page_url("inbox_settings:switch_channel", inbox, channel.pk), {"enabled": "false"})

    thread = as_admin.get(reverse("inboxes:thread", args=[inbox.account.subdomain, conversation(inbox).pk]))
    assert thread.status_code == 200 and "Hello, my order has not arrived." in thread.text


def test_channel_off_mail_accepted_just_before_and_not_yet_in_the_inbox_waits_under_failed(as_admin, inbox):
    """'Mail accepted just before, and not yet in the inbox, waits under Failed messages.'"""
    to = address_of(inbox)
    raw = f"From: Carol <{CAROL}>\r\nTo: {to}\r\nSubject: Late\r\n\r\nHi\r\n"
    row = spool(raw.encode(), to)  # accepted by the ingress (250), waiting for a worker
    with scopes_disabled():
        channel = inbox.channels.get()
    as_admin.post(page_url("inbox_settings:switch_channel", inbox, channel.pk), {"enabled": "false"})

    outcome = process_inbound_message(row.pk)

    assert outcome == InboundMessage.State.FAILED
    assert conversations_of(inbox) == []


def test_a_new_inbox_gets_its_own_fallback_address_and_mail_forwarded_to_it_lands_there(
    as_admin,
    admin,
    inbox,
    ingress,
):
    """Create new inbox: 'Each inbox gets its own forwarding address … Forward mail to it and it lands
    in this inbox.'"""
    url = reverse("inbox_settings:new", args=[admin.account.subdomain])
    r = as_admin.post(
        url, {"step": "3", "name": "Billing", "access": "everyone", "then": "later"}, follow=True
    )
    assert "The inbox “Billing” was created." in r.text
    with scopes_disabled():
        billing = Inbox.objects.get(account=admin.account, name="Billing")
    assert address_of(billing) != address_of(inbox)

    send(ingress, address_of(billing), subject="Invoice question")

    assert [c.subject for c in conversations_of(billing)] == ["Invoice question"]
    assert conversations_of(inbox) == []


def test_access_agents_off_the_list_do_not_see_the_inbox_at_all(as_admin, inbox, ben, fay, ingress):
    """Access tab: 'Agents who are not on the list do not see the inbox at all.'"""
    r = as_admin.post(
        page_url("inbox_settings:access", inbox), {"access": "specific", "members": [ben.pk]}, follow=True
    )
    assert "Access to “Inbox” was saved." in r.text
    send(ingress, address_of(inbox))
    thread = reverse("inboxes:thread", args=[inbox.account.subdomain, conversation(inbox).pk])
    outsider_of_list, listed = Client(), Client()
    outsider_of_list.force_login(fay.user)
    listed.force_login(ben.user)

    assert outsider_of_list.get(thread).status_code == 404
    assert listed.get(thread).status_code == 200


def test_access_admins_off_the_list_see_the_inbox_read_only(as_admin, admin, inbox, ben, ingress, outbox):
    """Access tab: 'Super admins and account admins who are not on the list still see the inbox and its
    conversations, read-only: they cannot reply … until they are on the list.'"""
    as_admin.post(page_url("inbox_settings:access", inbox), {"access": "specific", "members": [ben.pk]})
    send(ingress, address_of(inbox))
    thread = reverse("inboxes:thread", args=[inbox.account.subdomain, conversation(inbox).pk])

    assert as_admin.get(thread).status_code == 200
    assert reply(admin, conversation(inbox)).status_code == 403
    assert outbox.messages == []


# === Fallback address, Configuration tab (C1–C8, C12) ===


def test_send_from_off_the_inbox_still_receives_email(as_admin, inbox, ingress):
    """'Off: the inbox still receives email, but replies cannot be sent from it.' (the first half)"""
    configure(as_admin, inbox, send_from=False)

    send(ingress, address_of(inbox))

    assert [c.subject for c in conversations_of(inbox)] == ["Where is my order?"]


def test_send_from_off_replies_cannot_be_sent_from_it(as_admin, admin, inbox, ingress, outbox):
    """'Off: the inbox still receives email, but replies cannot be sent from it.' (the second half)"""
    configure(as_admin, inbox, send_from=False)
    send(ingress, address_of(inbox))

    r = reply(admin, conversation(inbox))

    assert "Sending from the InboxHub address is turned off for this inbox." in r.text
    assert outbox.messages == []


def test_from_name_agent_and_company_is_the_name_contacts_see(as_admin, inbox, ada, ingress, outbox):
    """From name: 'The name contacts see beside the address, e.g. “Jane Doe at Acme”.'"""
    configure(as_admin, inbox, from_name_mode="agent_and_company", company_name="Alpha")
    send(ingress, address_of(inbox))

    reply(ada, conversation(inbox))

    assert sent_from(outbox)[0] == "Ada Lovelace at Alpha"
    assert outbox.messages[-1][0] == [CAROL]


def test_saved_settings_are_used_by_every_later_reply(as_admin, inbox, ada, ingress, outbox):
    """Saved: 'Fallback address settings saved. Replies sent from this inbox from now on use them.'"""
    send(ingress, address_of(inbox))
    reply(ada, conversation(inbox))
    assert sent_from(outbox)[0] == "Ada Lovelace at Alpha"

    configure(
        as_admin,
        inbox,
        from_name_mode="company",
        company_name="Alpha Care",
        signature_html="<p>The Alpha Care team</p>",
    )
    reply(ada, conversation(inbox), "One more thing.")

    assert sent_from(outbox)[0] == "Alpha Care"
    assert "The Alpha Care team" in text_of(outbox.messages[-1][1])


def test_default_from_address_each_agent_sends_as_their_own_inboxhub_address(
    as_admin,
    inbox,
    ada,
    fay,
    ingress,
    outbox,
):
    """'Use default — each agent sends as their own InboxHub address' (paid and free seats, C4)."""
    configure(as_admin, inbox, from_address_mode="default")
    send(ingress, address_of(inbox), subject="First")
    send(ingress, address_of(inbox), subject="Second")

    reply(ada, conversation(inbox, "First"))
    paid = sent_from(outbox)[1]
    reply(fay, conversation(inbox, "Second"))  # a free seat may answer an unassigned conversation (B7)
    free = sent_from(outbox)[1]

    assert paid == f"ada.lovelace@alpha.{django_settings.SENDING_DOMAIN_PAID}"
    assert free == f"fay.free@alpha.{django_settings.SENDING_DOMAIN_FREE}"


def request_verification(client, inbox, outbox, address: str) -> str:
    """*Verify address* on the Configuration tab; the link from the mail that reached the smarthost."""
    r = configure(client, inbox, from_address_mode="custom", custom_from_address=address, action="verify")
    assert f"A verification link is on its way to {address}." in r.text
    rcpt_tos, mail = outbox.messages[-1]
    assert rcpt_tos == [address]
    return re.search(r"https?://\S+", mail.get_content()).group(0)


def test_custom_from_address_pending_verification_contacts_see_the_default_address(
    as_admin,
    inbox,
    ada,
    ingress,
    outbox,
    quiet_dns,
):
    """'Pending verification: until someone confirms the link we email to it, contacts see the default
    address.'"""
    quiet_dns.add("acme.example", "MX", "10 mx.acme.example.")
    request_verification(as_admin, inbox, outbox, "help@acme.example")
    send(ingress, address_of(inbox))

    reply(ada, conversation(inbox))

    assert sent_from(outbox)[1] == f"ada.lovelace@alpha.{django_settings.SENDING_DOMAIN_PAID}"


def test_custom_from_address_once_verified_is_the_address_contacts_see(
    as_admin,
    inbox,
    ada,
    ingress,
    outbox,
    quiet_dns,
):
    """'Customize from address: send as an address on your own domain, once it is verified.'"""
    quiet_dns.add("acme.example", "MX", "10 mx.acme.example.")
    link = request_verification(as_admin, inbox, outbox, "help@acme.example")
    parts = urlsplit(link)
    # Whoever reads that mailbox confirms it, with no InboxHub session.
    Client().post(parts.path, {"token": parse_qs(parts.query)["token"][0]})
    send(ingress, address_of(inbox))

    reply(ada, conversation(inbox))

    assert sent_from(outbox) == ("Ada Lovelace at Alpha", "help@acme.example")


def test_the_preview_shows_what_a_contact_sees_when_you_reply(as_admin, inbox, ada, ingress, outbox):
    """Preview: 'What a contact sees when you reply from this inbox.' (as the replying agent)"""
    configure(as_admin, inbox, company_name="Alpha Care", signature_html="<p>Cheers, {{first_name}}</p>")
    with scopes_disabled():
        Membership.objects.filter(pk=ada.pk).update(permission=Membership.Permission.ACCOUNT_ADMIN)
    as_ada = Client()
    as_ada.force_login(ada.user)
    page = as_ada.get(page_url("fallback:configuration", inbox)).text
    name = re.search(r"<strong data-preview-name>(.*?)</strong>", page).group(1)
    address = re.search(r"<span class=\"mono\" data-preview-address>&lt;(.*?)&gt;</span>", page).group(1)
    send(ingress, address_of(inbox))

    reply(ada, conversation(inbox))

    default = f"ada.lovelace@alpha.{django_settings.SENDING_DOMAIN_PAID}"
    assert (name, address) == sent_from(outbox) == ("Ada Lovelace at Alpha Care", default)
    assert "Cheers, Ada" in page and "Cheers, Ada" in text_of(outbox.messages[-1][1])


def test_team_signature_is_added_to_replies_with_the_sending_agents_name(
    as_admin,
    inbox,
    ada,
    ben,
    ingress,
    outbox,
):
    """'Added to replies sent from this inbox. Tokens are filled with the name of the agent who sends each
    reply.'"""
    configure(
        as_admin, inbox, signature_html="<p>Best, <b>{{first_name}}</b></p><p>{{full_name}} · Alpha</p>"
    )
    send(ingress, address_of(inbox), subject="First")
    send(ingress, address_of(inbox), subject="Second")

    reply(ada, conversation(inbox, "First"))
    reply(ben, conversation(inbox, "Second"))

    ada_mail, ben_mail = outbox.messages[-2][1], outbox.messages[-1][1]
    assert "Best, Ada" in text_of(ada_mail) and "Ada Lovelace · Alpha" in text_of(ada_mail)
    assert "Best, Ben" in text_of(ben_mail) and "Ben Okafor · Alpha" in text_of(ben_mail)
    assert "<b>Ada</b>" in ada_mail.get_body(preferencelist=("html",)).get_content()


def test_forwarding_address_mail_sent_to_it_arrives_in_the_inbox(as_admin, inbox, ingress):
    """Forwarding address: 'Mail sent or forwarded to this address arrives in “Inbox”.'"""
    page = as_admin.get(page_url("fallback:configuration", inbox)).text
    shown = re.search(r'id="forwarding-address" value="([^"]+)"', page).group(1)

    send(ingress, shown)

    assert [c.subject for c in conversations_of(inbox)] == ["Where is my order?"]


def test_gmails_forwarding_confirmation_arrives_in_the_inbox_with_its_link(as_admin, inbox, ingress):
    """'Gmail sends a confirmation email first: it arrives in this inbox, where you can open the link.'"""
    link = "https://mail-settings.google.com/mail/vf-abc123-def456"
    message = EmailMessage()
    message["From"] = "Gmail Team <forwarding-noreply@google.com>"
    message["To"] = address_of(inbox)
    message["Subject"] = "(#123456789) Gmail Forwarding Confirmation - Receive Mail from alice@alpha.example"
    message.set_content(
        "alice@alpha.example has requested to automatically forward mail to your email address.\n\n"
        "To allow alice@alpha.example to automatically forward mail to your address, "
        f"click the link below:\n{link}\n"
    )
    send_raw(ingress, address_of(inbox), message.as_bytes(), mail_from="forwarding-noreply@google.com")

    (confirmation,) = conversations_of(inbox)
    thread = as_admin.get(reverse("inboxes:thread", args=[inbox.account.subdomain, confirmation.pk]))
    assert link in thread.text


def forward_from_alice(server, inbox: Inbox, settings) -> None:
    """Alice forwards a customer's mail from Gmail; her mail server counts as authenticated (G8)."""
    settings.TRUSTED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    raw = (SAMPLES / "forwards" / "gmail_en.eml").read_bytes()
    send_raw(server, address_of(inbox), raw, mail_from="alice@alpha.example")


def test_select_original_sender_on_logs_a_forward_to_the_original_sender(as_admin, inbox, ingress, settings):
    """'On: an email a member forwards into the inbox is logged to the original sender's contact.'"""
    configure(as_admin, inbox, select_original_sender=True)

    forward_from_alice(ingress, inbox, settings)

    (forwarded,) = conversations_of(inbox)
    with scopes_disabled():
        assert forwarded.contact.email == "ingrid.svensson@kund.example"


def test_select_original_sender_off_logs_a_forward_to_the_member_who_forwarded_it(
    as_admin,
    inbox,
    ingress,
    settings,
):
    """'Off: it is logged to the member who forwarded it.'"""
    configure(as_admin, inbox, select_original_sender=False)

    forward_from_alice(ingress, inbox, settings)

    (forwarded,) = conversations_of(inbox)
    with scopes_disabled():
        assert forwarded.contact.email == "alice@alpha.example"
        assert not Contact.objects.filter(
            account=inbox.account, email="ingrid.svensson@kund.example"
        ).exists()


# === Automation tab (D2–D7) ===


def test_automatic_assignment_gives_a_new_conversation_an_owner_as_it_arrives(as_admin, inbox, ada, ingress):
    """'Each new conversation in Inbox goes to a member by the rules below as soon as it arrives.'"""
    automate(as_admin, inbox, members=[ada])

    send(ingress, address_of(inbox))

    assert conversation(inbox).assignee == ada


def test_automatic_assignment_leaves_a_conversation_a_machine_started_in_unassigned(
    as_admin, inbox, ada, ingress
):
    """'… a conversation a machine started (a bounce, an auto-reply) stays [in Unassigned].'"""
    automate(as_admin, inbox, members=[ada])

    send(ingress, address_of(inbox), subject="Out of office", Auto_Submitted="auto-replied")

    assert conversation(inbox, "Out of office").assignee is None


def test_specific_users_and_teams_share_conversations_fairly(as_admin, inbox, ada, ben, ingress):
    """Specific users and teams: 'Share conversations fairly among the members and teams you pick.'"""
    automate(as_admin, inbox, members=[ada, ben])

    for n in range(4):
        send(ingress, address_of(inbox), subject=f"Question {n}")

    owners = [c.assignee_id for c in conversations_of(inbox)]
    assert sorted(owners) == sorted([ada.pk, ada.pk, ben.pk, ben.pk])


def test_contact_owner_gets_the_conversation(as_admin, inbox, ada, ben, ingress):
    """Contact owner: 'Give the conversation to the contact's owner, when they have a paid seat.'"""
    with scopes_disabled():
        Contact.objects.create(account=inbox.account, email=CAROL, name="Carol Customer", owner=ben)
    automate(as_admin, inbox, assign_to="contact_owner")

    send(ingress, address_of(inbox))

    assert conversation(inbox).assignee == ben


def test_a_team_contributes_only_its_paid_seat_members(as_admin, admin, inbox, ada, fay, ingress):
    """'Only members with a paid seat can be assigned automatically; a team contributes its paid-seat
    members.'"""
    team = make_team(admin.account, "Support", ada, fay)
    automate(as_admin, inbox, teams=[team])

    for n in range(3):
        send(ingress, address_of(inbox), subject=f"Question {n}")

    assert [c.assignee_id for c in conversations_of(inbox)] == [ada.pk] * 3


def test_only_available_users_skips_away_members(as_admin, inbox, ada, ben, ingress):
    """'Members set to Away are skipped …'"""
    set_availability(ada, AWAY)
    automate(as_admin, inbox, members=[ada, ben], only_available=True)

    for n in range(2):
        send(ingress, address_of(inbox), subject=f"Question {n}")

    assert [c.assignee_id for c in conversations_of(inbox)] == [ben.pk, ben.pk]


def test_only_available_users_when_nobody_is_available_it_stays_unassigned(as_admin, inbox, ada, ingress):
    """'… when nobody is available, the conversation stays unassigned.'"""
    set_availability(ada, AWAY)
    automate(as_admin, inbox, members=[ada], only_available=True)

    send(ingress, address_of(inbox))

    assert conversation(inbox).assignee is None


def test_only_available_unchecked_ignores_availability(as_admin, inbox, ada, ingress):
    """'Unchecked, availability is ignored.'"""
    set_availability(ada, AWAY)
    automate(as_admin, inbox, members=[ada], only_available=False)

    send(ingress, address_of(inbox))

    assert conversation(inbox).assignee == ada


def test_capacity_skips_members_at_the_limit_until_one_closes(as_admin, inbox, ada, ingress):
    """'Members with this many open conversations in Inbox are skipped until one closes. Empty: no limit.'"""
    automate(as_admin, inbox, members=[ada], capacity="1")
    send(ingress, address_of(inbox), subject="First")
    send(ingress, address_of(inbox), subject="Second")
    first, second = conversation(inbox, "First"), conversation(inbox, "Second")
    assert (first.assignee, second.assignee) == (ada, None)

    as_ada = Client()
    as_ada.force_login(ada.user)
    as_ada.post(reverse("conversations:close", args=[inbox.account.subdomain, first.pk]))

    assert conversation(inbox, "Second").assignee == ada


def test_capacity_empty_means_no_limit(as_admin, inbox, ada, ingress):
    """'Empty: no limit.'"""
    automate(as_admin, inbox, members=[ada], capacity="")

    for n in range(3):
        send(ingress, address_of(inbox), subject=f"Question {n}")

    assert [c.assignee_id for c in conversations_of(inbox)] == [ada.pk] * 3


def test_trying_the_rules_saves_and_assigns_nothing(as_admin, inbox, ada, ingress):
    """Try these rules: 'Shows who would have got the last 100 conversations … Nothing is saved or
    assigned.'"""
    send(ingress, address_of(inbox))
    data = {
        "enabled": "on",
        "assign_to": "specific",
        "members": [ada.pk],
        "only_available": "on",
        "action": "try",
    }

    r = as_admin.post(page_url("automation:edit", inbox), data)

    assert "Ada Lovelace" in r.text and "Nothing was saved." in r.text
    assert conversation(inbox).assignee is None
    with scopes_disabled():
        assert not AssignmentRule.objects.filter(inbox=inbox, enabled=True).exists()
    send(ingress, address_of(inbox), subject="Later")
    assert conversation(inbox, "Later").assignee is None


# === Tickets tab (C11) ===


def test_ticket_creation_each_conversation_incoming_mail_starts_opens_a_ticket_with_the_properties(
    as_admin,
    inbox,
    ingress,
):
    """'Each conversation that incoming mail starts in Inbox opens a support ticket with the properties
    below.'"""
    ticket_settings(as_admin, inbox, stage="Waiting on us", priority="high", owner_mode="nobody")

    send(ingress, address_of(inbox))

    ticket = ticket_of(conversation(inbox))
    assert (ticket.pipeline.name, ticket.stage.name, ticket.priority) == (
        "Support pipeline",
        "Waiting on us",
        "high",
    )


def test_ticket_creation_a_reply_in_an_existing_conversation_opens_none(as_admin, inbox, ingress):
    """'A reply in an existing conversation opens none.'"""
    ticket_settings(as_admin, inbox, owner_mode="nobody")
    send(ingress, address_of(inbox), Message_ID="<first@customer.example>")

    send(
        ingress,
        address_of(inbox),
        subject="Re: Where is my order?",
        In_Reply_To="<first@customer.example>",
    )

    (only,) = conversations_of(inbox)
    with scopes_disabled():
        assert only.messages.count() == 2
        assert Ticket.objects.filter(account=inbox.account).count() == 1


def test_ticket_owner_conversation_owner_is_the_member_automatic_assignment_gives(
    as_admin,
    inbox,
    ada,
    ingress,
):
    """Conversation owner: 'The member automatic assignment gives the conversation as it arrives.'"""
    automate(as_admin, inbox, members=[ada])
    ticket_settings(as_admin, inbox, owner_mode="conversation_owner")

    send(ingress, address_of(inbox))

    assert ticket_of(conversation(inbox)).owner == ada


def test_ticket_owner_conversation_owner_left_unassigned_opens_its_ticket_without_an_owner(
    as_admin,
    inbox,
    ada,
    ingress,
):
    """'A conversation left unassigned opens its ticket without an owner.'"""
    set_availability(ada, AWAY)
    automate(as_admin, inbox, members=[ada])
    ticket_settings(as_admin, inbox, owner_mode="conversation_owner")

    send(ingress, address_of(inbox))

    assert conversation(inbox).assignee is None
    assert ticket_of(conversation(inbox)).owner is None


def test_ticket_owner_conversation_owner_with_assignment_off_new_tickets_start_without_an_owner(
    as_admin,
    inbox,
    ingress,
):
    """'Automatic assignment is off in this inbox, so new tickets start without an owner.'"""
    r = ticket_settings(as_admin, inbox, owner_mode="conversation_owner")
    assert "Automatic assignment is off in this inbox, so new tickets start without an owner." in r.text

    send(ingress, address_of(inbox))

    assert ticket_of(conversation(inbox)).owner is None


def test_ticket_owner_a_specific_member_owns_every_new_ticket(as_admin, inbox, ada, ben, ingress):
    """A specific member: 'The same member owns every new ticket.' (whoever the conversation goes to)"""
    automate(as_admin, inbox, members=[ada])
    ticket_settings(as_admin, inbox, owner_mode="member", owner=ben)

    for n in range(2):
        send(ingress, address_of(inbox), subject=f"Question {n}")

    assert [ticket_of(c).owner for c in conversations_of(inbox)] == [ben, ben]
    assert conversation(inbox, "Question 0").assignee == ada


def test_ticket_owner_no_owner_new_tickets_start_without_an_owner(as_admin, inbox, ada, ingress):
    """No owner: 'New tickets start without an owner.' (even when the conversation is assigned)"""
    automate(as_admin, inbox, members=[ada])
    ticket_settings(as_admin, inbox, owner_mode="nobody")

    send(ingress, address_of(inbox))

    assert conversation(inbox).assignee == ada
    assert ticket_of(conversation(inbox)).owner is None


# === the pages still say what these tests prove ===

PROMISES = [
    ("inbox_settings:detail", "A channel that is off receives and sends nothing."),
    (
        "inbox_settings:detail",
        "is refused: the sender gets a bounce, and the message neither appears in this inbox",
    ),
    (
        "inbox_settings:detail",
        "Mail accepted just before, and not yet in the inbox, waits under Failed messages: retry it there",
    ),
    ("inbox_settings:detail", "Conversations already in the inbox stay."),
    ("inbox_settings:access", "Agents who are not on the list do not see the inbox at all."),
    ("inbox_settings:access", "still see the inbox and its conversations, read-only"),
    ("fallback:configuration", "Off: the inbox still receives email, but replies cannot be sent from it."),
    ("fallback:configuration", "Each agent sends as their own InboxHub address"),
    ("fallback:configuration", "Send as an address on your own domain, once it is verified."),
    ("fallback:configuration", "Mail sent or forwarded to this address arrives in “Inbox”."),
    ("fallback:configuration", "Gmail sends a confirmation email first: it arrives in this inbox"),
    (
        "fallback:configuration",
        "Added to replies sent from this inbox. "
        "Tokens are filled with the name of the agent who sends each reply.",
    ),
    (
        "fallback:configuration",
        "On: an email a member forwards into the inbox is logged to the original sender's",
    ),
    ("fallback:configuration", "Off: it is logged to the member who forwarded it."),
    ("fallback:configuration", "What a contact sees when you reply from this inbox."),
    ("automation:edit", "goes to a member by the rules below as soon as it arrives"),
    ("automation:edit", "a conversation a machine started (a bounce, an auto-reply) stays there."),
    ("automation:edit", "Share conversations fairly among the members and teams you pick."),
    ("automation:edit", "Give the conversation to the contact's owner, when they have a paid seat."),
    ("automation:edit", "a team contributes its paid-seat members."),
    (
        "automation:edit",
        "Members set to Away are skipped; when nobody is available, the conversation stays unassigned.",
    ),
    ("automation:edit", "Unchecked, availability is ignored."),
    ("automation:edit", "open conversations in Inbox are skipped until one closes. Empty: no limit."),
    ("automation:edit", "Nothing is saved or assigned."),
    ("ticket_settings:edit", "opens a support ticket with the properties below."),
    ("ticket_settings:edit", "A reply in an existing conversation opens none."),
    ("ticket_settings:edit", "The member automatic assignment gives the conversation as it arrives."),
    ("ticket_settings:edit", "The same member owns every new ticket."),
    ("ticket_settings:edit", "New tickets start without an owner."),
]


@pytest.mark.parametrize(("page", "words"), PROMISES)
def test_each_promise_proved_here_is_what_its_page_says(as_admin, inbox, page, words):
    """A page that changes its words changes what must be proved: the test above it must follow."""
    text = html.unescape(re.sub(r"<[^>]+>", "", as_admin.get(page_url(page, inbox)).text))

    assert words in " ".join(text.split())
