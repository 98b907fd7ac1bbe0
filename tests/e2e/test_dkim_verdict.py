"""The thread in Chromium: mail signed with a key nobody published says why it is not verified (G8, #15)."""

import dkim
import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from channels_conn.models import FallbackAddress, InboundMessage
from inboxes.models import Message
from ingest.pipeline import process_inbound_message
from tests.dkimkeys import generate_dkim_key
from tests.dnsserver import dns_server  # noqa: F401 - the fixture
from tests.e2e.conftest import assert_accessible, assert_fits_mobile, login, screenshot

SIGNED_INVOICE = (
    "From: Carol Customer <carol@customer.example>\r\nTo: {to}\r\nSubject: Invoice 1001\r\n"
    "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <invoice1001@customer.example>\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    "Please pay invoice 1001 by Friday.\r\n"
)
REASON = "dkim=permerror (no key published at selector2024._domainkey.customer.example)"


@pytest.fixture
def no_published_key(dns_server, settings):  # noqa: F811 - the imported fixture
    """customer.example has SPF and DMARC p=none, and no DKIM key under any selector."""
    settings.DNS_NAMESERVERS = [dns_server.address]
    settings.TRUSTED_NETWORKS = []
    settings.TRUSTED_RELAYS = []
    dns_server.add_txt("customer.example", "v=spf1 -all")
    dns_server.add_txt("_dmarc.customer.example", "v=DMARC1; p=none")
    return dns_server


def test_an_agent_reads_that_the_signing_key_is_not_published(page, demo, no_published_key, caplog):
    with scopes_disabled():
        address = FallbackAddress.objects.get(account__subdomain="acme", channel__inbox__name="Sales").address
        raw = SIGNED_INVOICE.format(to=address).encode()
        key = generate_dkim_key()
        raw = dkim.sign(raw, b"selector2024", b"customer.example", key.private_pem) + raw
        inbound = InboundMessage.objects.create(
            raw=raw,
            size=len(raw),
            mail_from="carol@customer.example",
            rcpt_tos=[address],
            peer_ip="203.0.113.66",
        )
    assert process_inbound_message(inbound.pk) == InboundMessage.State.PROCESSED
    with scopes_disabled():
        message = Message.objects.select_related("account").get(inbound=inbound)
    login(page, "admin@acme.example")

    page.goto(reverse("inboxes:thread", args=[message.account.subdomain, message.conversation_id]))

    mark = page.locator("details.sender-auth")
    assert " ".join(mark.locator("summary").inner_text().split()) == f"Sender not verified ({REASON})"
    mark.locator("summary").click()
    assert f"Nothing proves this message comes from the domain in its From header: {REASON}." in " ".join(
        mark.inner_text().split()
    )
    assert [r for r in caplog.records if r.levelname in ("WARNING", "ERROR", "CRITICAL") or r.exc_info] == []
    screenshot(page, "thread-dkim-key-not-published-desktop")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "thread-dkim-key-not-published-mobile")
