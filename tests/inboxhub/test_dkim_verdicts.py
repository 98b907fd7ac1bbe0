"""A DKIM key missing, broken, revoked or unreachable is a verdict on the message, not a log error (G8).

Issue #15, point 5. Mail is signed here with a real key; the key record of
each case is published (or not) on a real DNS server on loopback. Every case
leaves a reason a person can read (RFC 6376 6.1.2, RFC 8601 2.7.1) and no log
record above INFO, none with a traceback.
"""

import io
import json
import logging
from email.utils import make_msgid

import dkim
import pytest
from django.core.management import call_command
from django.urls import reverse
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from inboxes.models import Message
from inboxhub.lib.mail.authentication import evaluate_sender
from ingest.pipeline import process_inbound_message
from tests.dkimkeys import Key, generate_dkim_key
from tests.dnsserver import dns_server  # noqa: F401 - the fixture
from tests.inboxes.helpers import address_of, default_inbox, messages_in

KEY_NAME = "sel._domainkey.acme.example"


@pytest.fixture(scope="module")
def key() -> Key:
    return generate_dkim_key()


@pytest.fixture
def dns(dns_server, settings):  # noqa: F811 - the imported fixture
    """acme.example publishes SPF for nobody and DMARC p=none; its DKIM key is up to each test."""
    settings.DNS_NAMESERVERS = [dns_server.address]
    settings.TRUSTED_NETWORKS = []
    settings.TRUSTED_RELAYS = []
    settings.TRUSTED_AUTHSERV_ID = ""
    dns_server.add_txt("acme.example", "v=spf1 -all")
    dns_server.add_txt("_dmarc.acme.example", "v=DMARC1; p=none")
    return dns_server


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def message(to: str = "help@alpha.inbox.localhost") -> bytes:
    return (
        f"From: Ada <ada@acme.example>\r\nTo: {to}\r\nSubject: Invoice 1001\r\n"
        f"Date: Mon, 03 Mar 2025 10:00:00 +0000\r\nMessage-ID: {make_msgid(domain='acme.example')}\r\n"
        "\r\nPlease pay invoice 1001.\r\n"
    ).encode()


def signed(raw: bytes, key: Key, *, selector: str = "sel") -> bytes:
    headers = [b"from", b"to", b"subject", b"date"]
    return dkim.sign(raw, selector.encode(), b"acme.example", key.private_pem, include_headers=headers) + raw


def evaluate(raw: bytes):
    return evaluate_sender(
        raw=raw, peer_ip="203.0.113.66", helo="mail.acme.example", mail_from="ada@acme.example"
    )


def loud(caplog) -> list[str]:
    """Log records a person on call would be woken for: above INFO, or carrying a traceback."""
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno > logging.INFO or r.exc_info
    ]


def test_a_signature_whose_key_is_not_published_is_a_permerror_naming_where_it_was_looked_for(dns, key, logs):
    verdict = evaluate(signed(message(), key))

    assert verdict.authenticated is False
    assert verdict.reason == f"dkim=permerror (no key published at {KEY_NAME})"
    assert verdict.results["dkim"][0]["result"] == "permerror"
    assert loud(logs) == []


def test_an_empty_key_record_is_no_key_published(dns, key, logs):
    dns.add_txt(KEY_NAME, "")

    verdict = evaluate(signed(message(), key))

    assert verdict.reason == f"dkim=permerror (no key published at {KEY_NAME})"
    assert loud(logs) == []


def test_a_key_record_whose_p_is_not_a_key_is_a_permerror_saying_so(dns, key, logs):
    dns.add_txt(KEY_NAME, "v=DKIM1; k=rsa; p=QUJD*notakey")

    verdict = evaluate(signed(message(), key))

    assert verdict.reason == f"dkim=permerror (malformed key at {KEY_NAME}: p= is not a public key)"
    assert loud(logs) == []


def test_a_key_record_that_is_not_a_tag_list_is_unreadable(dns, key, logs):
    dns.add_txt(KEY_NAME, "this is not a key")

    verdict = evaluate(signed(message(), key))

    assert verdict.reason == f"dkim=permerror (unreadable key record at {KEY_NAME})"
    assert loud(logs) == []


def test_a_revoked_key_fails_the_signature(dns, key, logs):
    dns.add_txt(KEY_NAME, "v=DKIM1; k=rsa; p=")

    verdict = evaluate(signed(message(), key))

    assert verdict.reason == f"dkim=fail (key revoked at {KEY_NAME})"
    assert verdict.results["dkim"][0]["result"] == "fail"
    assert loud(logs) == []


def test_a_signature_another_key_made_fails_as_not_verifying(dns, key, logs):
    dns.add_txt(KEY_NAME, generate_dkim_key().public_record)

    verdict = evaluate(signed(message(), key))

    assert verdict.reason == "dkim=fail (signature did not verify)"
    assert loud(logs) == []


def test_during_a_key_rollover_the_record_that_verifies_is_used_whichever_the_dns_lists_first(dns, logs):
    # The order of the two records in an answer varies with their content: four keys, four draws.
    for selector in ("sel1", "sel2", "sel3", "sel4"):
        key = generate_dkim_key()
        dns.add_txt(f"{selector}._domainkey.acme.example", "v=DKIM1; k=rsa; p=QUJD")
        dns.add_txt(f"{selector}._domainkey.acme.example", key.public_record)

        verdict = evaluate(signed(message(), key, selector=selector))

        assert verdict.reason == "dkim=pass (acme.example, aligned)", selector


def test_a_dns_that_does_not_answer_is_a_temperror_with_the_name_it_asked(dns, key, logs):
    dns.add_txt(KEY_NAME, key.public_record)
    dns.answering = False

    verdict = evaluate(signed(message(), key))

    assert verdict.reason == "temperror"
    assert verdict.results["dkim"][0]["result"] == "temperror"
    assert verdict.results["dkim"][0]["reason"] == f"no DNS answer for {KEY_NAME} in time"
    assert loud(logs) == []


def test_a_key_lookup_that_times_out_while_dmarc_is_known_says_which_name_did_not_answer(dns, key, logs):
    dns.remove("_dmarc.acme.example")
    dns.remove("acme.example")
    evaluate(message())  # "no DMARC, no SPF record" is now cached, as after earlier mail from acme.example
    dns.answering = False

    verdict = evaluate(signed(message(), key))

    assert verdict.reason == f"dkim=temperror (no DNS answer for {KEY_NAME} in time)"
    assert loud(logs) == []


def test_a_signature_without_a_domain_is_a_permerror_in_plain_words(dns, key, logs):
    raw = b"DKIM-Signature: v=1; a=rsa-sha256; s=sel; h=from; bh=AAAA; b=AAAA\r\n" + message()

    verdict = evaluate(raw)

    assert verdict.reason == "dkim=permerror (malformed signature: missing d=)"
    assert loud(logs) == []


def test_inspect_email_reports_the_missing_key_and_logs_nothing_loud(dns, key, logs):
    out = io.StringIO()

    call_command("inspect_email", "-", stdin=io.BytesIO(signed(message(), key)), stdout=out)

    auth = json.loads(out.getvalue())["authentication"]
    assert auth["reason"] == f"dkim=permerror (no key published at {KEY_NAME})"
    assert loud(logs) == []


def test_mail_signed_without_a_published_key_is_received_and_its_thread_says_why(
    client, dns, key, logs, agent
):
    inbox = default_inbox(agent.account)
    to = address_of(inbox)
    raw = signed(message(to), key)
    with scopes_disabled():
        inbound = InboundMessage.objects.create(
            raw=raw, size=len(raw), mail_from="ada@acme.example", rcpt_tos=[to], peer_ip="203.0.113.66"
        )

    assert process_inbound_message(inbound.pk) == InboundMessage.State.PROCESSED

    [received] = messages_in(inbox.account)
    assert received.auth_verdict == Message.AuthVerdict.NOT_VERIFIED
    assert received.auth_reason == f"dkim=permerror (no key published at {KEY_NAME})"
    client.force_login(agent.user)
    page = client.get(reverse("inboxes:thread", args=[inbox.account.subdomain, received.conversation_id]))
    assert (
        f'<span class="sender-auth-reason">(dkim=permerror (no key published at {KEY_NAME}))</span>'
        in page.text
    )
    assert loud(logs) == []
