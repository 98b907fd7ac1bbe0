"""Sender authentication decides who may pass for a member, and shows on the thread (G8, C8, B12).

A loopback DNS server publishes alpha.example's SPF, DKIM key and DMARC
policy; keys are made here and mail is signed with dkimpy. Alice Admin
(alice@alpha.example) is a member; mail "from" her is hers only when the
sender is authenticated as alpha.example.
"""

import ipaddress
import smtplib

import dkim
import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from channels_conn.models import InboundMessage
from inboxes.models import Contact, Message
from inboxhub.celery import app as celery_app
from ingest.pipeline import ingest_inbound, process_inbound_message
from tests.channels_conn.conftest import start_smtp  # noqa: F401 - the fixture
from tests.dkimkeys import Key, generate_dkim_key
from tests.factories import MembershipFactory
from tests.inboxes.helpers import CAROL, address_of, forward_of, messages_in, receive, verified_as

ALLOWED_IP = "198.51.100.7"  # alpha.example's mail server, in its SPF record
STRANGER_IP = "203.0.113.66"  # in nobody's
RELAY_IP = "192.0.2.25"
AUTHSERV_ID = "mx.inboxhub.example"

FORWARD_BODY = (
    "FYI, see below.\r\n\r\n"
    "---------- Forwarded message ---------\r\n"
    "From: Carol Customer <carol@customer.example>\r\n"
    "Date: Mon, 23 Nov 2026 at 09:00\r\n"
    "Subject: Broken widget\r\n"
    "To: Alice Admin <alice@alpha.example>\r\n\r\n\r\n"
    "My widget is broken. Please refund order 1001.\r\n"
)


@pytest.fixture(scope="module")
def key() -> Key:
    return generate_dkim_key()


@pytest.fixture
def dns(quiet_dns, key):
    """alpha.example: SPF for its own server only, a DKIM key, DMARC p=none; other.example: a key."""
    quiet_dns.add_txt("alpha.example", f"v=spf1 ip4:{ALLOWED_IP} -all")
    quiet_dns.add_txt("sel._domainkey.alpha.example", key.public_record)
    quiet_dns.add_txt("_dmarc.alpha.example", "v=DMARC1; p=none")
    quiet_dns.add_txt("sel._domainkey.other.example", key.public_record)
    return quiet_dns


@pytest.fixture
def ingress(start_smtp, monkeypatch):  # noqa: F811 - the imported fixture
    """The real SMTP ingress; its task runs in the server's thread after the commit, as without REDIS_URL."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    return start_smtp()


def forward(to: str, *, headers: str = "", body: str = FORWARD_BODY, message_id: str = "fwd1") -> bytes:
    """Alice Admin forwarding Carol's mail to the inbox, unsigned."""
    return (
        f"{headers}From: Alice Admin <alice@alpha.example>\r\nTo: {to}\r\nSubject: Fwd: Broken widget\r\n"
        f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{message_id}@alpha.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"\r\n{body}"
    ).encode()


def signed(raw: bytes, key: Key, *, domain: str = "alpha.example") -> bytes:
    signature = dkim.sign(
        raw,
        b"sel",
        domain.encode(),
        key.private_pem,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    return signature + raw


def spooled(
    raw: bytes,
    to: str,
    *,
    peer_ip: str = STRANGER_IP,
    mail_from: str = "alice@alpha.example",
    helo: str = "mail.alpha.example",
) -> InboundMessage:
    return InboundMessage.objects.create(
        raw=raw, size=len(raw), mail_from=mail_from, rcpt_tos=[to], peer_ip=peer_ip, helo=helo
    )


def only_message(inbox) -> Message:
    [message] = messages_in(inbox.account)
    return message


def contacts_of(account) -> set[str]:
    with scopes_disabled():
        return set(Contact.objects.filter(account=account).values_list("email", flat=True))


def send(server, raw: bytes, to: str, *, mail_from: str = "alice@alpha.example") -> tuple[int, bytes]:
    with smtplib.SMTP(
        server.hostname, server.port, local_hostname="mail.alpha.example", timeout=15
    ) as client:
        client.ehlo()
        client.mail(mail_from)
        client.rcpt(to)
        return client.data(raw)


def thread_url(message) -> str:
    return reverse("inboxes:thread", args=[message.account.subdomain, message.conversation_id])


# --- over a real SMTP session (the ingress on loopback, TRUSTED_NETWORKS empty) ---


def test_a_members_forward_with_an_aligned_dkim_signature_is_logged_to_the_original_sender(
    ingress, dns, key, admin, inbox
):
    to = address_of(inbox)
    code, _ = send(ingress, signed(forward(to), key), to)

    assert code == 250
    message = only_message(inbox)
    assert message.conversation.contact.email == "carol@customer.example"
    assert message.attributed_by == Message.AttributedBy.FORWARDED_BLOCK
    assert message.auth_verdict == Message.AuthVerdict.AUTHENTICATED
    assert message.auth_reason == "dkim=pass (alpha.example, aligned)"
    assert message.auth_details["domain"] == "alpha.example"
    assert message.auth_details["results"]["spf"]["mailfrom"]["result"] == "fail"  # 127.0.0.1: DKIM decides
    assert message.claimed_member is None
    assert "authenticated as alpha.example" in message.attribution_note


def test_the_same_forward_unsigned_from_an_ip_spf_refuses_is_a_strangers_marked_not_verified(
    ingress, dns, admin, inbox
):
    to = address_of(inbox)
    code, _ = send(ingress, forward(to), to)

    assert code == 250
    message = only_message(inbox)
    assert message.conversation.contact.email == "alice@alpha.example"
    assert message.attributed_by == Message.AttributedBy.STRANGER_FORWARD
    assert message.auth_verdict == Message.AuthVerdict.NOT_VERIFIED
    assert message.auth_reason == "spf=fail"
    assert message.claimed_member_id == admin.pk
    assert message.forwarded_original["forwarded_by_member"] is False
    assert "carol@customer.example" not in contacts_of(admin.account)
    assert "not verified as them" in message.attribution_note


# --- the spool row through the worker's ingest ---


def test_a_valid_signature_over_a_body_changed_after_signing_is_not_verified(dns, key, admin, inbox):
    to = address_of(inbox)
    raw = signed(forward(to), key).replace(b"order 1001", b"order 6666")

    ingest_inbound(spooled(raw, to))

    message = only_message(inbox)
    assert message.auth_verdict == Message.AuthVerdict.NOT_VERIFIED
    assert message.auth_reason == "dkim=fail (body hash mismatch)"
    assert message.conversation.contact.email == "alice@alpha.example"
    assert message.claimed_member_id == admin.pk


def test_a_signature_of_another_domain_does_not_make_the_sender_a_member(dns, key, admin, inbox):
    to = address_of(inbox)

    ingest_inbound(spooled(signed(forward(to), key, domain="other.example"), to, mail_from="", helo=""))

    message = only_message(inbox)
    assert message.auth_verdict == Message.AuthVerdict.NOT_VERIFIED
    assert message.auth_reason == "dkim=pass (other.example, not aligned)"
    assert message.attributed_by == Message.AttributedBy.STRANGER_FORWARD
    assert "carol@customer.example" not in contacts_of(admin.account)


def test_a_dmarc_reject_failure_is_kept_and_flagged_as_possible_spoofing(client, dns, key, admin, inbox):
    dns.remove("_dmarc.alpha.example")
    dns.add_txt("_dmarc.alpha.example", "v=DMARC1; p=reject")
    to = address_of(inbox)

    ingest_inbound(spooled(forward(to), to))

    message = only_message(inbox)
    assert message.spoofing_suspected is True
    assert message.auth_reason == "dmarc=fail (p=reject)"
    assert message.conversation.contact.email == "alice@alpha.example"
    client.force_login(admin.user)
    text = client.get(thread_url(message)).text
    assert "Possible spoofing" in text
    assert "this message failed them (dmarc=fail (p=reject))" in text


def test_a_forged_authentication_results_from_a_non_relay_is_ignored(dns, settings, admin, inbox):
    settings.TRUSTED_RELAYS = [ipaddress.ip_network(RELAY_IP)]
    settings.TRUSTED_AUTHSERV_ID = AUTHSERV_ID
    to = address_of(inbox)
    forged = (
        f"Authentication-Results: {AUTHSERV_ID}; dkim=pass header.d=alpha.example; "
        "dmarc=pass header.from=alpha.example\r\n"
    )

    ingest_inbound(spooled(forward(to, headers=forged), to))

    message = only_message(inbox)
    assert message.auth_verdict == Message.AuthVerdict.NOT_VERIFIED
    assert message.auth_reason == "spf=fail"
    assert "authentication_results" not in message.auth_details["results"]
    assert message.attributed_by == Message.AttributedBy.STRANGER_FORWARD


def test_the_trusted_relays_own_authentication_results_is_honoured(dns, settings, admin, inbox):
    settings.TRUSTED_RELAYS = [ipaddress.ip_network(RELAY_IP)]
    settings.TRUSTED_AUTHSERV_ID = AUTHSERV_ID
    to = address_of(inbox)
    theirs = (
        f"Authentication-Results: {AUTHSERV_ID}; spf=pass smtp.mailfrom=alpha.example; "
        "dkim=pass header.d=alpha.example; dmarc=pass header.from=alpha.example\r\n"
        # Below the relay's own header: whatever the sender wrote, ignored.
    )
    forged_below = "Authentication-Results: elsewhere.example; dmarc=fail header.from=alpha.example\r\n"

    ingest_inbound(spooled(forward(to, headers=theirs + forged_below), to, peer_ip=RELAY_IP))

    message = only_message(inbox)
    assert message.auth_verdict == Message.AuthVerdict.AUTHENTICATED
    assert message.auth_reason == f"dmarc=pass ({AUTHSERV_ID})"
    assert message.auth_details["method"] == "trusted_relay"
    assert message.conversation.contact.email == "carol@customer.example"


def test_a_dead_dns_gives_temperror_and_the_message_is_still_processed(dns, admin, inbox):
    dns.answering = False
    to = address_of(inbox)
    inbound = spooled(forward(to), to)

    state = process_inbound_message(inbound.pk)

    assert state == InboundMessage.State.PROCESSED
    message = only_message(inbox)
    assert message.auth_verdict == Message.AuthVerdict.NOT_VERIFIED
    assert message.auth_reason == "temperror"
    # Not verified means not trusted: a DNS outage never lets a claimed member through.
    assert message.attributed_by == Message.AttributedBy.STRANGER_FORWARD


def test_a_client_on_a_trusted_network_is_authenticated_without_any_dns_query(dns, settings, admin, inbox):
    settings.TRUSTED_NETWORKS = [ipaddress.ip_network("198.51.100.0/24")]
    to = address_of(inbox)

    ingest_inbound(spooled(forward(to), to, peer_ip=ALLOWED_IP))

    message = only_message(inbox)
    assert message.auth_verdict == Message.AuthVerdict.AUTHENTICATED
    assert message.auth_reason == "trusted network 198.51.100.0/24"
    assert message.conversation.contact.email == "carol@customer.example"
    assert sum(dns.queries.values()) == 0


def test_a_plain_message_from_a_members_address_records_the_claim(dns, admin, inbox):
    to = address_of(inbox)
    raw = forward(to, body="Please change the bank account for invoice 1001.\r\n")

    ingest_inbound(spooled(raw, to))

    message = only_message(inbox)
    assert message.attributed_by == Message.AttributedBy.FROM
    assert message.claimed_member_id == admin.pk
    assert "names the member Alice Admin" in message.attribution_note


def test_an_authenticated_mail_of_a_stranger_claims_nobody(dns, key, admin, inbox):
    to = address_of(inbox)
    dns.add_txt("sel._domainkey.customer.example", key.public_record)
    raw = forward(to).replace(b"Alice Admin <alice@alpha.example>", b"Carol <carol@customer.example>", 1)

    ingest_inbound(spooled(signed(raw, key, domain="customer.example"), to, mail_from=""))

    message = only_message(inbox)
    assert message.auth_verdict == Message.AuthVerdict.AUTHENTICATED
    assert message.claimed_member is None


# --- the trust check itself (receive_message) ---


def test_without_a_verdict_a_members_forward_is_a_strangers(admin, inbox):
    message = receive(inbox, forward_of(CAROL, by="alice@alpha.example"))

    assert message.attributed_by == Message.AttributedBy.STRANGER_FORWARD
    assert message.auth_verdict == ""
    assert message.claimed_member_id == admin.pk


def test_a_verdict_for_another_domain_never_makes_the_sender_a_member(admin, inbox):
    message = receive(inbox, forward_of(CAROL, by="alice@alpha.example"), verdict=verified_as("evil.example"))

    assert message.attributed_by == Message.AttributedBy.STRANGER_FORWARD
    assert message.auth_verdict == Message.AuthVerdict.AUTHENTICATED
    assert message.claimed_member_id == admin.pk


# --- shown on the thread page ---


def test_the_thread_shows_sender_not_verified_claims_to_be_the_member_with_the_reason(
    client, dns, agent, admin, inbox
):
    to = address_of(inbox)
    ingest_inbound(spooled(forward(to), to))
    message = only_message(inbox)

    client.force_login(agent.user)
    text = client.get(thread_url(message)).text

    assert "Sender not verified — claims to be Alice Admin" in text
    assert '<span class="sender-auth-reason">(spf=fail)</span>' in text
    assert 'role="img" aria-label="Not verified"' in text
    assert "Detected forward (not trusted: the forwarder is not verified as a member)" in text


def test_the_thread_shows_a_verified_mark_with_the_reason(client, dns, key, agent, inbox):
    to = address_of(inbox)
    ingest_inbound(spooled(signed(forward(to), key), to))
    message = only_message(inbox)

    client.force_login(agent.user)
    text = client.get(thread_url(message)).text

    assert "Sender verified as alpha.example" in text
    assert '<span class="sender-auth-reason">(dkim=pass (alpha.example, aligned))</span>' in text
    assert 'role="img" aria-label="Verified"' in text


def test_admins_read_how_the_verdict_changed_the_attribution(client, dns, admin, inbox):
    to = address_of(inbox)
    ingest_inbound(spooled(forward(to), to))
    message = only_message(inbox)

    client.force_login(admin.user)
    text = client.get(thread_url(message)).text

    assert "Not verified — spf=fail; the From address is a member's, so without verification" in text


def test_a_claimed_member_name_with_markup_is_escaped(client, dns, admin, inbox):
    MembershipFactory(
        account=admin.account,
        user__email="mallory@alpha.example",
        user__full_name="<b onclick=alert(1)>Mal</b>",
    )
    to = address_of(inbox)
    raw = forward(to).replace(b"Alice Admin <alice@alpha.example>", b"Mal <mallory@alpha.example>", 1)
    ingest_inbound(spooled(raw, to, mail_from="mallory@alpha.example"))
    message = only_message(inbox)

    client.force_login(admin.user)
    text = client.get(thread_url(message)).text

    assert "<b onclick" not in text
    assert "claims to be &lt;b onclick=alert(1)&gt;Mal&lt;/b&gt;" in text


def test_the_thread_needs_the_same_queries_with_claimed_members(
    client, dns, agent, admin, inbox, django_assert_num_queries
):
    to = address_of(inbox)
    ingest_inbound(spooled(forward(to), to))
    first = only_message(inbox)
    client.force_login(agent.user)
    client.get(thread_url(first))
    # session, user, account, membership, the conversation, the viewer's read mark, its messages with
    # claimed members, their attachments, its activity, its assignment decisions, who can be assigned,
    # the composer's fallback address, the switcher's accounts
    with django_assert_num_queries(18):
        client.get(thread_url(first))
    for n in range(3):
        reply = forward(to, message_id=f"reply{n}", headers="In-Reply-To: <fwd1@alpha.example>\r\n")
        ingest_inbound(spooled(reply, to))
    with django_assert_num_queries(18):
        text = client.get(thread_url(first)).text
    assert text.count("claims to be Alice Admin") == 4


def test_an_outsider_gets_404_for_a_thread_with_a_verdict(client, dns, outsider, inbox):
    to = address_of(inbox)
    ingest_inbound(spooled(forward(to), to))
    message = only_message(inbox)

    client.force_login(outsider.user)

    assert client.get(thread_url(message)).status_code == 404
    with scope(account=inbox.account):
        assert Message.objects.get(pk=message.pk).auth_reason == "spf=fail"
