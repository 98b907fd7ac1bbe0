"""A reply that bounces, in Chromium: the agent answers, the reply leaves through a capture smarthost, the
recipient's server returns it over SMTP from the null sender, and the thread shows the reply bounced with the
server's reason (H3, RFC 3464).
"""

import smtplib

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from channels_conn.models import FallbackAddress
from inboxes.models import Conversation
from inboxhub.celery import app as celery_app
from tests.channels_conn.conftest import start_smtp  # noqa: F401 - the fixture
from tests.dnsserver import dns_server  # noqa: F401 - the fixture
from tests.e2e.conftest import assert_accessible, assert_fits_mobile, login, screenshot
from tests.factories import PASSWORD, make_account
from tests.inboxes.helpers import raw_mail
from tests.machine_mail import machine_mail
from tests.smarthost import smarthost

CONTACT = "carol@customer.example"
REASON = (
    "550 5.1.1 <carol@customer.example>: Recipient address rejected: User unknown in virtual mailbox table"
)


@pytest.fixture
def ingress(start_smtp, dns_server, settings, monkeypatch):  # noqa: F811 - the imported fixtures
    """The real ingress, sender checks on a quiet DNS; tasks run in the server's thread (no REDIS_URL)."""
    settings.DNS_NAMESERVERS = [dns_server.address]
    settings.TRUSTED_NETWORKS = []
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    return start_smtp()


@pytest.fixture
def outbox(settings):
    with smarthost(settings) as handler:
        yield handler


def send(server, raw: bytes, to: str, *, mail_from: str) -> None:
    with smtplib.SMTP(server.hostname, server.port, local_hostname="mx.example", timeout=15) as client:
        client.ehlo()
        client.mail(mail_from)
        client.rcpt(to)
        code, answer = client.data(raw)
    assert code == 250, answer


def test_a_bounced_reply_shows_bounced_with_the_servers_reason(page, ingress, outbox):
    admin = make_account("alpha", company_name="Alpha", full_name="Alice Admin", email="alice@alpha.example")
    with scopes_disabled():
        to = FallbackAddress.objects.get(account=admin.account).address
    send(ingress, raw_mail(to=to), to, mail_from=CONTACT)
    with scopes_disabled():
        conversation = Conversation.objects.get(account=admin.account)

    login(page, "alice@alpha.example", PASSWORD)
    page.goto(reverse("inboxes:thread", args=["alpha", conversation.pk]))
    page.get_by_label("Reply", exact=True).fill("Your parcel left our warehouse this morning.")
    page.get_by_role("button", name="Send").click()
    assert outbox.received.wait(10), "the reply never reached the smarthost"
    [(_, reply)] = outbox.messages

    bounce = machine_mail(
        "postfix_bounce",
        to=to,
        contact=CONTACT,
        reply_id=reply["Message-ID"].strip("<>"),
        reply_to=reply["Reply-To"],
    )
    send(ingress, bounce, to, mail_from="")
    page.reload()

    state = page.locator(".delivery-state.delivery-bounced")
    expect(state.locator(".badge")).to_have_text("Bounced")
    expect(state).to_contain_text(f"returned this reply as undeliverable: {REASON}")
    # Carol's mail and the reply: the bounce is no message of the thread.
    assert page.locator("article.message").count() == 2
    assert_accessible(page)
    screenshot(page, "bounced-reply")
    assert_fits_mobile(page)
    screenshot(page, "bounced-reply-mobile")
