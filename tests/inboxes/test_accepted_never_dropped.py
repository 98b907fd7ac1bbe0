"""Nothing accepted is dropped: a channel turned off after the 250 (issue 16, point 5).

The mail goes over SMTP to the real ingress while its channel is on and gets 250; the
workers are behind (the ingress publishes to a broker nobody consumes yet, as after a
broker outage). An admin turns the channel off on the settings page; then a worker gets
to the row. The message waits on Failed messages with its reason, and Retry brings it in
once the channel is on again.
"""

import smtplib
from email.message import EmailMessage

import pytest
from django.test import Client
from django.urls import reverse
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from inboxes.models import Conversation, Inbox
from inboxhub.celery import app as celery_app
from ingest.pipeline import process_inbound_batch
from tests.channels_conn.conftest import start_smtp  # noqa: F401 - the fixture
from tests.inboxes.helpers import address_of
from tests.inboxes.inbox_settings_helpers import make_inbox

REASON = "was turned off after this message was accepted"


@pytest.fixture
def workers_behind(monkeypatch):
    """The ingress publishes ids to the broker and no worker takes them: the rows wait in the spool."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", False)


@pytest.fixture
def ingress(start_smtp, workers_behind):  # noqa: F811 - the fixture imported above
    return start_smtp()


@pytest.fixture
def as_admin(admin) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin.user)
    client.get(reverse("inboxes:failed", args=[admin.account.subdomain]))  # sets the CSRF cookie
    return client


def post(client: Client, url: str, data: dict):
    return client.post(url, data, headers={"X-CSRFToken": client.cookies["csrftoken"].value}, follow=True)


def send(ingress, *recipients: str, subject: str = "Where is my order?") -> InboundMessage:
    message = EmailMessage()
    message["From"] = "Carol Customer <carol@customer.example>"
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content("Hello, my order has not arrived.\n")
    with smtplib.SMTP(ingress.hostname, ingress.port, timeout=10) as client:
        refused = client.send_message(message, from_addr="carol@customer.example", to_addrs=list(recipients))
    assert refused == {}  # 250 for every recipient
    with scopes_disabled():
        return InboundMessage.objects.get()


def switch_channel(client: Client, inbox: Inbox, *, on: bool):
    with scopes_disabled():
        channel = inbox.channels.get()
    url = reverse("inbox_settings:switch_channel", args=[inbox.account.subdomain, inbox.pk, channel.pk])
    assert post(client, url, {"enabled": "true" if on else "false"}).status_code == 200


def conversations_of(inbox: Inbox) -> list[str]:
    with scopes_disabled():
        return list(Conversation.objects.filter(inbox=inbox).values_list("subject", flat=True))


def failed_page(client: Client, inbox: Inbox) -> str:
    r = client.get(reverse("inboxes:failed", args=[inbox.account.subdomain]))
    assert r.status_code == 200
    return r.text


def retry(client: Client, row: InboundMessage, *, monkeypatch):
    # The workers have caught up: what Retry enqueues runs at once.
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    url = reverse("inboxes:retry_failed", args=[row.account.subdomain, row.pk])
    return post(client, url, {})


def test_mail_accepted_before_its_channel_was_turned_off_ends_on_failed_messages_with_the_reason(
    as_admin, inbox, ingress
):
    row = send(ingress, address_of(inbox))
    switch_channel(as_admin, inbox, on=False)

    outcomes = process_inbound_batch([row.pk])  # a worker gets to it

    assert outcomes == {str(row.pk): InboundMessage.State.FAILED}
    assert conversations_of(inbox) == []
    page = failed_page(as_admin, inbox)
    assert f'id="inbound-{row.pk}"' in page
    assert f"The channel of {address_of(inbox)} {REASON}; turn it on again and retry." in page
    assert "Where is my order?" in page


def test_retry_brings_the_message_in_once_the_channel_is_on_again(as_admin, inbox, ingress, monkeypatch):
    row = send(ingress, address_of(inbox))
    switch_channel(as_admin, inbox, on=False)
    process_inbound_batch([row.pk])
    switch_channel(as_admin, inbox, on=True)

    r = retry(as_admin, row, monkeypatch=monkeypatch)

    assert f"Message #{row.pk} is queued for another try." in r.text
    assert conversations_of(inbox) == ["Where is my order?"]
    assert f'id="inbound-{row.pk}"' not in failed_page(as_admin, inbox)
    row.refresh_from_db()
    assert row.state == InboundMessage.State.PROCESSED


def test_retry_while_the_channel_is_still_off_keeps_it_on_failed_messages(
    as_admin, inbox, ingress, monkeypatch
):
    row = send(ingress, address_of(inbox))
    switch_channel(as_admin, inbox, on=False)
    process_inbound_batch([row.pk])

    retry(as_admin, row, monkeypatch=monkeypatch)

    assert conversations_of(inbox) == []
    assert REASON in failed_page(as_admin, inbox)


def test_a_copy_for_an_inbox_still_on_arrives_while_the_other_waits_for_its_channel(
    admin, as_admin, inbox, ingress, monkeypatch
):
    billing = make_inbox(admin, "Billing")
    row = send(ingress, address_of(inbox), address_of(billing))
    switch_channel(as_admin, billing, on=False)

    process_inbound_batch([row.pk])

    assert conversations_of(inbox) == ["Where is my order?"]
    assert conversations_of(billing) == []
    assert f"The channel of {address_of(billing)} {REASON}" in failed_page(as_admin, inbox)

    switch_channel(as_admin, billing, on=True)
    retry(as_admin, row, monkeypatch=monkeypatch)

    assert conversations_of(billing) == ["Where is my order?"]
    assert conversations_of(inbox) == ["Where is my order?"]  # not twice
