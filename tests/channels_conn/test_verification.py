"""C4: *Verify address* mails a signed link through the outbound SMTP server; whoever holds it confirms.

The link needs no login (it proves only the mailbox): it opens a page naming the account, inbox and
address, and only its *Verify* button (a POST) verifies, so a mail scanner's GET verifies nothing.
"""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client
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

EXPIRED = "This verification link has expired: links work for 24 hours."
INVALID = "This verification link is not valid."
ON_ITS_WAY = (
    "A verification link is on its way to help@acme.example. It works once, for 24 hours; "
    "whoever reads that mailbox confirms it, no InboxHub login needed."
)
ALREADY = "was already verified for the inbox <strong>Inbox</strong> of <strong>Alpha</strong>."
REPLACED = "This verification link was replaced by a newer one."
VERIFIED = (
    '<strong class="mono">help@acme.example</strong> is verified for the inbox <strong>Inbox</strong> '
    "of <strong>Alpha</strong>."
)


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
    return client.post(link.split("?", 1)[0], {"token": token_of(link)})


def test_verify_address_sends_a_real_email_with_a_link_to_the_address(signed_in, inbox, outbox, acme):
    with outbox.delivering():
        r = signed_in.post(page_url(inbox), settings_with("help@acme.example", action="verify"), follow=True)

    assert ON_ITS_WAY in r.text
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
    assert "http://testserver/verify/from-address/?token=" in body
    assert "no InboxHub login is needed" in body


def test_opening_the_link_names_account_inbox_and_address_and_changes_nothing_yet(
    client, signed_in, inbox, outbox, acme
):
    link = request_link(signed_in, inbox, outbox)
    client.logout()

    r = client.get(link)  # what a mail scanner fetching the link does, too

    assert r.status_code == 200
    assert (
        "<strong>Alpha</strong> wants to send email from its InboxHub inbox <strong>Inbox</strong> "
        'as <strong class="mono">help@acme.example</strong>.'
    ) in r.text
    assert '<button type="submit" class="button">Verify help@acme.example</button>' in r.text
    assert not fallback_of(inbox).custom_from_verified


def test_confirming_the_link_without_signing_in_verifies_the_address_and_it_becomes_the_from_address(
    client, signed_in, admin, inbox, outbox, acme
):
    link = request_link(signed_in, inbox, outbox)
    client.logout()

    r = confirm(client, link)

    assert r.status_code == 200
    assert VERIFIED in r.text
    fallback = fallback_of(inbox)
    assert fallback.custom_from_verified and fallback.custom_from_nonce == ""
    client.force_login(admin.user)
    page = client.get(page_url(inbox))
    assert '<span class="badge badge-success">Verified</span>' in page.text
    assert "&lt;help@acme.example&gt;" in page.text  # the preview's from address
    with scopes_disabled():
        entry = AuditEntry.objects.get(account=admin.account, action="from_address_verified")
    assert entry.actor is None  # no member acted: the mailbox's owner did
    assert entry.details["address"] == "help@acme.example"


@pytest.mark.parametrize("who", ["nobody", "agent", "outsider"])
def test_the_link_works_signed_in_as_anybody_or_nobody(request, client, signed_in, inbox, outbox, acme, who):
    link = request_link(signed_in, inbox, outbox)
    client.logout()
    if who != "nobody":
        client.force_login(request.getfixturevalue(who).user)

    r = confirm(client, link)

    assert r.status_code == 200 and VERIFIED in r.text
    assert fallback_of(inbox).custom_from_verified


def test_a_confirmation_without_the_csrf_token_is_refused_and_verifies_nothing(
    signed_in, inbox, outbox, acme
):
    link = request_link(signed_in, inbox, outbox)
    browser = Client(enforce_csrf_checks=True)

    r = browser.post(link.split("?", 1)[0], {"token": token_of(link)})

    assert r.status_code == 403
    assert not fallback_of(inbox).custom_from_verified


def test_a_second_click_says_already_verified_and_changes_nothing(client, signed_in, inbox, outbox, acme):
    link = request_link(signed_in, inbox, outbox)
    confirm(client, link)
    verified_at = fallback_of(inbox).custom_from_verified_at

    again = confirm(client, link)
    opened = client.get(link)

    assert again.status_code == 200 and ALREADY in again.text
    assert opened.status_code == 200 and ALREADY in opened.text
    assert fallback_of(inbox).custom_from_verified_at == verified_at


def test_an_expired_link_is_refused_and_points_to_the_settings_for_a_new_one(
    client, signed_in, inbox, outbox, acme
):
    link = request_link(signed_in, inbox, outbox)

    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)):
        shown = client.get(link)
        r = confirm(client, link)

    assert shown.status_code == 400 and EXPIRED in shown.text
    assert r.status_code == 400 and EXPIRED in r.text
    assert f'<a href="{page_url(inbox)}">Fallback address settings</a>' in r.text
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
def test_a_tampered_link_is_refused_and_changes_nothing(client, signed_in, inbox, outbox, acme, tamper):
    link = request_link(signed_in, inbox, outbox)
    path, token = link.split("?", 1)[0], token_of(link)

    r = client.post(path, {"token": tamper(token)})

    assert r.status_code == 400
    assert INVALID in r.text
    assert "Alpha" not in r.text  # a forged link learns nothing about any account
    assert not fallback_of(inbox).custom_from_verified


def test_a_link_for_an_inbox_deleted_since_is_refused(client, signed_in, inbox, outbox, acme):
    link = request_link(signed_in, inbox, outbox)
    with scopes_disabled():
        FallbackAddress.objects.filter(pk=fallback_of(inbox).pk).delete()

    r = confirm(client, link)

    assert r.status_code == 400 and INVALID in r.text


def test_a_newer_link_replaces_the_older_one(client, signed_in, inbox, outbox, acme):
    first = request_link(signed_in, inbox, outbox)
    second = request_link(signed_in, inbox, outbox)

    r = confirm(client, first)

    assert r.status_code == 400 and REPLACED in r.text
    assert not fallback_of(inbox).custom_from_verified
    confirm(client, second)
    assert fallback_of(inbox).custom_from_verified


def test_changing_the_address_makes_the_old_link_verify_nothing(client, signed_in, inbox, outbox, acme):
    link = request_link(signed_in, inbox, outbox)
    signed_in.post(page_url(inbox), settings_with("help@other.example"))

    r = confirm(client, link)

    assert r.status_code == 400
    assert (
        "This link was sent to help@acme.example, but the inbox&#x27;s from address has changed since. "
        "Nothing was verified."
    ) in r.text
    assert "help@other.example" not in r.text  # the old mailbox's owner does not learn the new address
    assert not fallback_of(inbox).custom_from_verified


def test_changing_a_verified_address_resets_it_and_it_must_be_verified_again(
    client, signed_in, inbox, outbox, acme
):
    old_link = request_link(signed_in, inbox, outbox)
    confirm(client, old_link)
    assert fallback_of(inbox).custom_from_verified

    r = signed_in.post(page_url(inbox), settings_with("help@other.example"), follow=True)

    assert "Pending verification" in r.text
    assert not fallback_of(inbox).custom_from_verified
    assert confirm(client, old_link).status_code == 400
    confirm(client, request_link(signed_in, inbox, outbox, "help@other.example"))
    fallback = fallback_of(inbox)
    assert fallback.custom_from_verified and fallback.custom_from_address == "help@other.example"


def test_the_page_says_the_link_is_on_its_way_until_the_mail_is_delivered(signed_in, inbox, outbox, acme):
    # No commit callbacks run: the page is what the admin sees before any worker has the mail.
    r = signed_in.post(page_url(inbox), settings_with("help@acme.example", action="verify"), follow=True)

    assert ON_ITS_WAY in r.text
    assert "A verification link is on its way to help@acme.example. Until it is verified" in r.text
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


def test_a_token_made_for_the_current_nonce_works_only_with_the_right_salt(inbox):
    from django.core import signing

    fallback = fallback_of(inbox)
    fallback.custom_from_address, fallback.custom_from_nonce = "help@acme.example", "n"
    token = make_token(fallback)

    with pytest.raises(signing.BadSignature):
        signing.loads(token)  # the default salt, as another feature's token would use
