"""The thread in Chromium: a forged member forward is marked "sender not verified" (G8).

And mail HTML never runs script (H2, B8).
"""

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from channels_conn.models import FallbackAddress, InboundMessage
from inboxes.models import Message
from ingest.pipeline import ingest_inbound
from tests.dnsserver import dns_server  # noqa: F401 - the fixture
from tests.e2e.conftest import assert_accessible, assert_fits_mobile, login, screenshot

STRANGER_IP = "203.0.113.66"  # not in acme.example's SPF record

FORGED_FORWARD = (
    "From: Ada Lovelace <ada@acme.example>\r\nTo: {to}\r\nSubject: Fwd: Refund for order 1001\r\n"
    "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <forged1@acme.example>\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    "Please refund this one to the new account below.\r\n\r\n"
    "---------- Forwarded message ---------\r\n"
    "From: Carol Customer <carol@customer.example>\r\n"
    "Date: Mon, 23 Nov 2026 at 09:00\r\n"
    "Subject: Refund for order 1001\r\n"
    "To: Ada Lovelace <ada@acme.example>\r\n\r\n\r\n"
    "My widget is broken; please refund order 1001.\r\n"
)

HOSTILE_HTML = (
    "From: Mallory <mallory@evil.example>\r\nTo: {to}\r\nSubject: Look at this\r\n"
    "Date: Mon, 23 Nov 2026 11:00:00 +0000\r\nMessage-ID: <hostile1@evil.example>\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    "<p>Hello</p><script>alert(1)</script><img src=x onerror=alert(1)>"
    '<svg onload="alert(1)"></svg><a href="javascript:alert(1)">click</a>\r\n'
)


@pytest.fixture
def sender_checks(dns_server, settings):  # noqa: F811 - the imported fixture
    """acme.example allows only its own server by SPF; nothing is trusted by network."""
    settings.DNS_NAMESERVERS = [dns_server.address]
    settings.TRUSTED_NETWORKS = []
    settings.TRUSTED_RELAYS = []
    dns_server.add_txt("acme.example", "v=spf1 ip4:198.51.100.7 -all")
    dns_server.add_txt("_dmarc.acme.example", "v=DMARC1; p=none")
    return dns_server


def deliver(template: str, *, mail_from: str) -> Message:
    """Spool a raw message to acme's Sales inbox and run the worker's ingest on it."""
    with scopes_disabled():
        address = FallbackAddress.objects.get(account__subdomain="acme", channel__inbox__name="Sales").address
        raw = template.format(to=address).encode()
        inbound = InboundMessage.objects.create(
            raw=raw,
            size=len(raw),
            mail_from=mail_from,
            rcpt_tos=[address],
            peer_ip=STRANGER_IP,
            helo="mail.example",
        )
        ingest_inbound(inbound)
        return Message.objects.select_related("account").get(inbound=inbound)


def thread_url(message: Message) -> str:
    return reverse("inboxes:thread", args=[message.account.subdomain, message.conversation_id])


def test_an_admin_sees_a_forged_member_forward_marked_sender_not_verified(page, demo, sender_checks):
    message = deliver(FORGED_FORWARD, mail_from="ada@acme.example")
    login(page, "admin@acme.example")

    response = page.goto(thread_url(message))

    assert response.status == 200
    mark = page.locator("details.sender-auth")
    summary = " ".join(mark.locator("summary").inner_text().split())
    assert summary == "Sender not verified — claims to be Ada Lovelace (spf=fail)"
    assert page.get_by_role("img", name="Not verified").is_visible()
    mark.locator("summary").click()
    assert mark.get_by_text(
        "Nothing proves this message comes from the domain in its From header"
    ).is_visible()
    assert "handled as a stranger's mail" in mark.inner_text()
    # Logged to the address it came from, never to the customer in the forwarded block.
    assert "with Ada Lovelace" in page.locator(".page-head").inner_text()
    assert page.locator("[style]").count() == 0
    screenshot(page, "thread-sender-not-verified-desktop")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "thread-sender-not-verified-mobile")


def test_mail_html_with_script_shows_no_dialog_and_its_frame_cannot_run_scripts(page, demo, sender_checks):
    message = deliver(HOSTILE_HTML, mail_from="mallory@evil.example")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    login(page, "admin@acme.example")

    page.goto(thread_url(message))
    frame_element = page.locator("iframe.message-html")
    frame_element.scroll_into_view_if_needed()
    page.frame_locator("iframe.message-html").get_by_text("Hello").wait_for()
    page.wait_for_timeout(300)  # room for an onerror or onload to fire, if anything let it

    sandbox = frame_element.get_attribute("sandbox")
    # allow-same-origin stays harmless without allow-scripts: the page reads the height, nothing runs inside.
    assert sandbox is not None and "allow-scripts" not in sandbox.split()
    assert dialogs == []
    assert page.get_by_text("Sender not verified").first.is_visible()
    screenshot(page, "thread-hostile-html")
    assert_accessible(page)
