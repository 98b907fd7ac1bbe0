"""Attachment downloads: members only, always a download, never sniffed (H2, rows 3, 7, 18-20)."""

import pytest
from django.urls import reverse
from django_scopes import scope

from inboxes.models import Attachment
from tests.inboxes.helpers import attachment, parsed, receive

pytestmark = pytest.mark.django_db


def stored(inbox, **fields) -> Attachment:
    message = receive(inbox, parsed(attachments=[attachment(**fields)]))
    with scope(account=inbox.account):
        return Attachment.objects.get(message=message)


def download_url(item: Attachment, subdomain: str | None = None) -> str:
    return reverse("inboxes:attachment", args=[subdomain or item.account.subdomain, item.pk])


def test_a_member_downloads_an_attachment_as_a_file(client, agent, inbox):
    item = stored(inbox, filename="invoice.pdf", payload=b"%PDF-1.4 fake", content_type="application/pdf")
    client.force_login(agent.user)
    r = client.get(download_url(item))
    assert r.status_code == 200
    assert b"".join(r.streaming_content) == b"%PDF-1.4 fake"
    assert (
        r.headers["Content-Disposition"]
        == "attachment; filename=\"invoice.pdf\"; filename*=UTF-8''invoice.pdf"
    )
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Type"] == "application/pdf"


def test_html_and_svg_attachments_are_sent_as_opaque_bytes(client, agent, inbox):
    item = stored(inbox, filename="x.svg", payload=b"<svg onload=alert(1)>", content_type="image/svg+xml")
    client.force_login(agent.user)
    r = client.get(download_url(item))
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"].startswith("attachment;")
    assert r.headers["Content-Security-Policy"].startswith("sandbox")


def test_a_filename_with_quotes_and_unicode_uses_rfc_6266_filename_star(client, agent, inbox):
    item = stored(inbox, filename='"><svg onload=alert(1)>résumé.png')
    client.force_login(agent.user)
    disposition = client.get(download_url(item)).headers["Content-Disposition"]
    assert disposition == (
        'attachment; filename="_><svg onload=alert(1)>r_sum_.png"; '
        "filename*=UTF-8''%22%3E%3Csvg%20onload%3Dalert%281%29%3Er%C3%A9sum%C3%A9.png"
    )


def test_an_outsider_gets_404_for_an_attachment(client, outsider, inbox):
    item = stored(inbox)
    client.force_login(outsider.user)
    assert client.get(download_url(item)).status_code == 404
    assert client.get(download_url(item, outsider.account.subdomain)).status_code == 404


def test_a_signed_out_visitor_is_sent_to_log_in(client, inbox):
    item = stored(inbox)
    r = client.get(download_url(item))
    assert r.status_code == 302 and "/login/" in r.headers["Location"]
