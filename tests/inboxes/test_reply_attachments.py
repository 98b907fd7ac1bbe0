"""Files on agents' replies (H3): stored like inbound ones, sent as MIME parts, listed under the reply."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django_scopes import scopes_disabled

from inboxes.models import Attachment, Contact, Conversation, Message
from inboxhub.celery import app as celery_app
from tests.inboxes.helpers import default_inbox

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4
CSV = b"name,amount\nwidget,12\n"
HOSTILE = '"><svg onload=alert(1)>.png'


@pytest.fixture(autouse=True)
def eager(monkeypatch):
    """Queued replies are delivered in the test's process, as without REDIS_URL."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)


@pytest.fixture
def conversation(admin) -> Conversation:
    with scopes_disabled():
        contact = Contact.objects.create(account=admin.account, email="carol@customer.example", name="Carol")
        return Conversation.objects.create(
            account=admin.account, inbox=default_inbox(admin.account), contact=contact, subject="Invoice"
        )


@pytest.fixture
def send(client, agent, conversation, django_capture_on_commit_callbacks):
    """Post a reply with files as the agent; it is delivered once the request's transaction commits."""

    def post(*files, body="Here is your invoice.", **kwargs):
        client.force_login(agent.user)
        url = reverse("inboxes:reply", args=[conversation.account.subdomain, conversation.pk])
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, {"body": body, "attachments": list(files)}, **kwargs)

    return post


def upload(name: str, content: bytes, content_type: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def stored(conversation) -> list[Attachment]:
    with scopes_disabled():
        return list(
            Attachment.objects.filter(message__conversation=conversation).order_by("created_at", "filename")
        )


def test_the_smarthost_receives_each_file_with_its_name_and_type(send, conversation, mail_server):
    send(upload("invoice.pdf", PDF, "application/pdf"), upload("items.csv", CSV, "text/csv"))

    [(_, mail)] = mail_server.messages
    parts = {part.get_filename(): part for part in mail.iter_attachments()}
    assert sorted(parts) == ["invoice.pdf", "items.csv"]
    assert parts["invoice.pdf"].get_content_type() == "application/pdf"
    assert parts["invoice.pdf"].get_content() == PDF
    assert parts["items.csv"].get_content_type() == "text/csv"
    assert mail.get_body(("plain",)).get_content().strip() == "Here is your invoice."
    with scopes_disabled():
        assert Message.objects.get(conversation=conversation).delivery_state == "sent"


def test_the_files_are_stored_like_inbound_ones_and_listed_under_the_reply(
    client, send, conversation, mail_server
):
    send(upload("invoice.pdf", PDF, "application/pdf"))

    [attachment] = stored(conversation)
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        "invoice.pdf",
        "application/pdf",
        len(PDF),
    )
    assert attachment.file.name.startswith(f"attachments/{conversation.account_id}/")
    assert "invoice" not in attachment.file.name  # a generated key, never the browser's name
    download = reverse("inboxes:attachment", args=[conversation.account.subdomain, attachment.pk])
    page = client.get(reverse("inboxes:thread", args=[conversation.account.subdomain, conversation.pk])).text
    reply = page.split(f'id="message-{attachment.message_id}"', 1)[1].split("</article>", 1)[0]
    assert f'href="{download}"' in reply and ">invoice.pdf</a>" in reply
    r = client.get(download)
    assert b"".join(r.streaming_content) == PDF
    assert r["Content-Disposition"].startswith("attachment;") and r["X-Content-Type-Options"] == "nosniff"


def test_files_over_the_limit_are_refused_naming_it_and_nothing_is_sent(
    send, conversation, mail_server, settings
):
    settings.REPLY_ATTACHMENTS_MAX_BYTES = 1024

    r = send(upload("scan.pdf", b"x" * 3000, "application/pdf"), headers={"HX-Request": "true"})

    assert r.status_code == 200
    assert "Attachments can be at most 1.0\xa0KB in total; these come to 2.9\xa0KB." in r.text
    assert 'id="reply-attachments-error" role="alert"' in r.text
    assert "Here is your invoice." in r.text  # the draft comes back
    with scopes_disabled():
        assert not Message.objects.filter(conversation=conversation).exists()
    assert stored(conversation) == [] and mail_server.messages == []


def test_the_composer_names_the_limit(client, agent, conversation, settings):
    settings.REPLY_ATTACHMENTS_MAX_BYTES = 10 * 1024 * 1024
    client.force_login(agent.user)

    page = client.get(reverse("inboxes:thread", args=[conversation.account.subdomain, conversation.pk])).text

    assert '<input type="file" id="reply-attachments" name="attachments" multiple>' in page
    assert "up to 10.0\xa0MB in total" in page
    assert 'enctype="multipart/form-data"' in page


def test_a_hostile_filename_is_escaped_in_the_thread_and_sent_as_given(
    client, send, conversation, mail_server
):
    send(upload(HOSTILE, b"\x89PNG fake", "image/png"))

    [attachment] = stored(conversation)
    assert attachment.filename == HOSTILE
    page = client.get(reverse("inboxes:thread", args=[conversation.account.subdomain, conversation.pk])).text
    assert "<svg onload" not in page and "&quot;&gt;&lt;svg onload=alert(1)&gt;.png" in page
    [(_, mail)] = mail_server.messages
    [part] = mail.iter_attachments()
    assert part.get_filename() == HOSTILE


def test_a_path_in_the_name_is_dropped_and_an_odd_type_guessed_from_the_name(send, conversation, mail_server):
    send(upload("../../etc/notes.txt", b"hello", "not a type"))

    [attachment] = stored(conversation)
    assert (attachment.filename, attachment.content_type) == ("notes.txt", "text/plain")
