"""C4: *Verify address* mails a signed one-time link through the outbound SMTP server; opening it verifies."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.utils import timezone
from django_scopes import scopes_disabled

from channels_conn.models import FallbackAddress
from channels_conn.verification import make_token
from inboxes.models import Inbox
from inboxhub.celery import app as celery_app
from inboxhub.models import AuditEntry
from tests.channels_conn.conftest import free_port
from tests.dnsserver import dns_server  # noqa: F401
from tests.smarthost import smarthost

EXPIRED = (
    "This verification link has expired: links work for 24 hours. Send a new one from the settings page."
)
INVALID = "This verification link is not valid."
USED = "This link was already used: help@acme.example is verified."
REPLACED = "This verification link was already used or replaced by a newer one."


@pytest.fixture
def outbox(settings, monkeypatch, django_capture_on_commit_callbacks):
    """A real SMTP server on loopback, configured as the outbound smarthost.

    `outbox.delivering()` wraps a request: the mail it queued is delivered when it ends, as a worker would.
    """
    # Queued mail is delivered in the test's process, as without REDIS_URL.
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    with smarthost(settings) as handler:
        handler.delivering = lambda: django_capture_on_commit_callbacks(execute=True)
        yield handler


@pytest.fixture
def inbox(admin) -> Inbox:
    with scopes_disabled():
        return Inbox.objects.get(account=admin.account, is_default=True)


@pytest.fixture
def signed_in(client, admin):
    client.force_login(admin.user)
    return client


@pytest.fixture
def acme(dns_server, settings):  # noqa: F811
    dns_server.add("acme.example", "MX", "10 mx.acme.example.")
    dns_server.add("other.example", "MX", "10 mx.other.example.")
    settings.DNS_NAMESERVERS = [dns_server.address]
    return dns_server


def page_url(inbox: Inbox) -> str:
    return f"/a/{inbox.account.subdomain}/settings/inboxes/{inbox.pk}/fallback/"


def fallback_of(inbox: Inbox) -> FallbackAddress:
    with scopes_disabled():
        return FallbackAddress.objects.select_related("channel").get(channel__inbox=inbox)


def settings_with(address: str, **overrides) -> dict:
    data = {
        "send_from": "on",
        "from_name_mode": "agent_and_company",
        "company_name": "Alpha",
        "from_address_mode": "custom",
        "custom_from_address": address,
        "signature_html": "",
        "select_original_sender": "on",
    }
    data.update(overrides)
    return data


def request_link(client, inbox, outbox, address="help@acme.example") -> str:
    """Click *Verify address* and return the path and query of the link the email holds."""
    before = len(outbox.messages)
    with outbox.delivering():
        r = client.post(page_url(inbox), settings_with(address, action="verify"), follow=True)
    assert r.status_code == 200
    assert len(outbox.messages) == before + 1
    body = outbox.messages[-1][1].get_content()
    link = re.search(r"https?://\S+", body).group(0)
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def confirm(client, link: str):
    return client.post(link.split("?", 1)[0], {"token": token_of(link)}, follow=True)


def test_verify_address_sends_a_real_email_with_a_link_to_the_address(signed_in, inbox, outbox, acme):
    with outbox.delivering():
        r = signed_in.post(page_url(inbox), settings_with("help@acme.example", action="verify"), follow=True)

    assert "A verification link is on its way to help@acme.example. It works once, for 24 hours." in r.text
    assert "Pending verification" in r.text
    assert outbox.received.wait(5)
    rcpt_tos, message = outbox.messages[0]
    assert rcpt_tos == ["help@acme.example"]
    assert message["Subject"] == "Verify help@acme.example for InboxHub"
    body = message.get_content()
    assert (
        "Alice Admin asked InboxHub to send email from the inbox “Inbox” of Alpha as help@acme.example."
        in body
    )
    assert f"http://testserver/a/alpha/settings/inboxes/{inbox.pk}/fallback/verify/?token=" in body


def test_opening_the_link_asks_to_confirm_and_changes_nothing_yet(signed_in, inbox, outbox, acme):
    link = request_link(signed_in, inbox, outbox)

    r = signed_in.get(link)

    assert r.status_code == 200
    assert "Let InboxHub send email from the inbox" in r.text
    assert '<button type="submit" class="button">Verify help@acme.example</button>' in r.text
    assert not fallback_of(inbox).custom_from_verified


def test_confirming_the_link_verifies_the_address_and_it_becomes_the_from_address(
    signed_in, admin, inbox, outbox, acme
):
    link = request_link(signed_in, inbox, outbox)

    r = confirm(signed_in, link)

    assert "help@acme.example is verified." in r.text
    assert '<span class="badge badge-success">Verified</span>' in r.text
    assert "&lt;help@acme.example&gt;" in r.text  # the preview's from address
    fallback = fallback_of(inbox)
    assert fallback.custom_from_verified and fallback.custom_from_nonce == ""
    with scopes_disabled():
        assert AuditEntry.objects.filter(account=admin.account, action="from_address_verified").count() == 1


def test_a_used_link_is_refused_the_second_time(signed_in, inbox, outbox, acme):
    link = request_link(signed_in, inbox, outbox)
    confirm(signed_in, link)
    verified_at = fallback_of(inbox).custom_from_verified_at

    r = confirm(signed_in, link)

    assert r.status_code == 400
    assert USED in r.text
    assert fallback_of(inbox).custom_from_verified_at == verified_at


def test_an_expired_link_is_refused_and_changes_nothing(signed_in, inbox, outbox, acme):
    link = request_link(signed_in, inbox, outbox)

    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)):
        shown = signed_in.get(link)
        r = confirm(signed_in, link)

    assert EXPIRED in shown.text
    assert r.status_code == 400 and EXPIRED in r.text
    assert not fallback_of(inbox).custom_from_verified


def test_a_link_just_inside_24_hours_still_works(signed_in, inbox, outbox, acme):
    link = request_link(signed_in, inbox, outbox)

    with time_machine.travel(timezone.now() + timedelta(hours=23, minutes=59)):
        confirm(signed_in, link)

    assert fallback_of(inbox).custom_from_verified


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # signature changed
        lambda token: "x" + token,  # payload changed
        lambda token: "",  # no token
        lambda token: "not-a-token",
    ],
    ids=["signature", "payload", "empty", "garbage"],
)
def test_a_tampered_link_is_refused_and_changes_nothing(signed_in, inbox, outbox, acme, tamper):
    link = request_link(signed_in, inbox, outbox)
    path, token = link.split("?", 1)[0], token_of(link)

    r = signed_in.post(path, {"token": tamper(token)})

    assert r.status_code == 400
    assert INVALID in r.text
    assert not fallback_of(inbox).custom_from_verified


def test_a_token_for_another_fallback_address_is_refused(signed_in, admin, inbox, outbox, acme):
    from django_scopes import scope

    from inboxes.services import create_inbox

    link = request_link(signed_in, inbox, outbox)
    with scope(account=admin.account):
        sales = create_inbox(admin.account, name="Sales")

    r = signed_in.post(page_url(sales) + "verify/", {"token": token_of(link)})

    assert r.status_code == 400
    assert INVALID in r.text


def test_a_newer_link_replaces_the_older_one(signed_in, inbox, outbox, acme):
    first = request_link(signed_in, inbox, outbox)
    second = request_link(signed_in, inbox, outbox)

    r = confirm(signed_in, first)

    assert r.status_code == 400 and REPLACED in r.text
    assert not fallback_of(inbox).custom_from_verified
    confirm(signed_in, second)
    assert fallback_of(inbox).custom_from_verified


def test_changing_the_address_makes_the_old_link_useless(signed_in, inbox, outbox, acme):
    link = request_link(signed_in, inbox, outbox)
    signed_in.post(page_url(inbox), settings_with("help@other.example"))

    r = confirm(signed_in, link)

    assert r.status_code == 400
    assert (
        "This link was sent to help@acme.example, but the from address is now help@other.example." in r.text
    )
    assert not fallback_of(inbox).custom_from_verified


def test_changing_a_verified_address_resets_it_and_it_must_be_verified_again(signed_in, inbox, outbox, acme):
    confirm(signed_in, request_link(signed_in, inbox, outbox))
    assert fallback_of(inbox).custom_from_verified

    r = signed_in.post(page_url(inbox), settings_with("help@other.example"), follow=True)

    assert "Pending verification" in r.text
    assert not fallback_of(inbox).custom_from_verified
    confirm(signed_in, request_link(signed_in, inbox, outbox, "help@other.example"))
    fallback = fallback_of(inbox)
    assert fallback.custom_from_verified and fallback.custom_from_address == "help@other.example"


def test_the_page_says_the_link_is_on_its_way_until_the_mail_is_delivered(signed_in, inbox, outbox, acme):
    # No commit callbacks run: the page is what the admin sees before any worker has the mail.
    r = signed_in.post(page_url(inbox), settings_with("help@acme.example", action="verify"), follow=True)

    assert "A verification link is on its way to help@acme.example. It works once, for 24 hours." in r.text
    assert "A verification link is on its way to help@acme.example. Until it is opened" in r.text
    assert "We sent" not in r.text
    assert outbox.messages == []


def test_a_delivered_verification_mail_shows_as_sent_on_the_page(signed_in, inbox, outbox, acme):
    request_link(signed_in, inbox, outbox)

    r = signed_in.get(page_url(inbox))

    assert "A verification link was sent to help@acme.example 0\xa0minutes ago." in r.text


def test_a_verification_mail_the_server_refuses_shows_why_on_the_page(signed_in, inbox, outbox, acme):
    outbox.data_answers = ["550 5.7.1 Relaying denied"]

    with outbox.delivering():
        r = signed_in.post(page_url(inbox), settings_with("help@acme.example", action="verify"), follow=True)
    page = signed_in.get(page_url(inbox))

    assert "A verification link is on its way to help@acme.example." in r.text
    assert outbox.messages == []
    assert (
        '<p class="error" id="verification-error">The verification email to help@acme.example '
        "could not be delivered: 550 5.7.1 Relaying denied</p>"
    ) in page.text
    assert "The verification email could not be delivered, so contacts see the default address." in page.text
    assert not fallback_of(inbox).custom_from_verified


def test_a_mail_server_that_is_down_leaves_the_address_unverified_and_says_so(
    signed_in, inbox, outbox, settings, acme
):
    settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = free_port(), 2  # nothing listens there

    with outbox.delivering():
        signed_in.post(page_url(inbox), settings_with("help@acme.example", action="verify"))
    page = signed_in.get(page_url(inbox))

    assert "could not be delivered: [Errno 111] Connection refused" in page.text
    assert not fallback_of(inbox).custom_from_verified


def test_an_agent_cannot_confirm_a_link(client, signed_in, agent, inbox, outbox, acme):
    link = request_link(signed_in, inbox, outbox)
    client.force_login(agent.user)

    assert confirm(client, link).status_code == 403
    assert not fallback_of(inbox).custom_from_verified


def test_an_outsider_gets_404_and_the_address_stays_unverified(
    client, signed_in, outsider, inbox, outbox, acme
):
    link = request_link(signed_in, inbox, outbox)
    client.force_login(outsider.user)

    assert client.get(link).status_code == 404
    assert confirm(client, link).status_code == 404
    assert not fallback_of(inbox).custom_from_verified


def test_a_token_made_for_the_current_nonce_works_only_with_the_right_salt(inbox):
    from django.core import signing

    fallback = fallback_of(inbox)
    fallback.custom_from_address, fallback.custom_from_nonce = "help@acme.example", "n"
    token = make_token(fallback)

    with pytest.raises(signing.BadSignature):
        signing.loads(token)  # the default salt, as another feature's token would use
