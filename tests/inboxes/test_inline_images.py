"""A mail's inline (cid:) images in its HTML document, through signed URLs (H2)."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope

from inboxes.inline_images import signed_url
from inboxhub.lib.mail.parsing import ParsedAttachment
from tests.inboxes.helpers import parsed, receive

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n fake image bytes"


def image(content_id: str, *, content_type: str = "image/png", payload: bytes = PNG) -> ParsedAttachment:
    return ParsedAttachment(
        filename="logo.png", content_type=content_type, payload=payload, content_id=content_id, inline=True
    )


def html_url(message) -> str:
    return reverse("inboxes:message_html", args=[message.account.subdomain, message.pk])


def image_sources(html: str) -> list[str]:
    return re.findall(r'<img[^>]* src="([^"]*)"', html)


@pytest.fixture
def as_agent(client, agent):
    client.force_login(agent.user)
    return client


def test_a_cid_image_of_the_message_is_served_by_a_signed_url(as_agent, inbox, client):
    message = receive(
        inbox, parsed(html='<p><img src="cid:logo@acme" alt="logo"></p>', attachments=[image("logo@acme")])
    )
    [source] = image_sources(as_agent.get(html_url(message)).text)
    assert source.startswith("/inline-images/")

    client.logout()  # the sandboxed frame's request carries no session
    r = client.get(source.replace("&amp;", "&"))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/png"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Security-Policy"].startswith("sandbox")
    assert b"".join(r.streaming_content) == PNG
    message.refresh_from_db()
    assert 'src="cid:logo@acme"' in message.html  # the stored HTML is left as it came


def test_the_content_id_matches_however_it_is_cased_or_escaped(as_agent, inbox):
    html = '<img src="cid:Logo%40Acme" alt="a"><img src="cid:%3Clogo@acme%3E" alt="b">'
    message = receive(inbox, parsed(html=html, attachments=[image("logo@ACME")]))
    sources = image_sources(as_agent.get(html_url(message)).text)
    assert len(sources) == 2 and all(source.startswith("/inline-images/") for source in sources)


def test_the_html_documents_policy_lets_it_load_images_from_this_app(as_agent, inbox):
    message = receive(
        inbox, parsed(html='<img src="cid:logo@acme" alt="logo">', attachments=[image("logo@acme")])
    )
    policy = as_agent.get(html_url(message)).headers["Content-Security-Policy"]
    # This app's signed image URLs only: remote images wait for "Show images" (H2).
    assert "img-src data: http://testserver/inline-images/;" in policy


@pytest.mark.parametrize("content_type", ["image/svg+xml", "text/html", "application/pdf"])
def test_a_cid_naming_a_part_that_is_not_a_plain_image_stays_unloaded(as_agent, inbox, client, content_type):
    part = image("logo@acme", content_type=content_type, payload=b"<svg onload=alert(1)>")
    message = receive(inbox, parsed(html='<img src="cid:logo@acme" alt="logo">', attachments=[part]))
    assert image_sources(as_agent.get(html_url(message)).text) == ["cid:logo@acme"]
    with scope(account=inbox.account):
        token_url = signed_url(message.attachments.get())
    assert client.get(token_url).status_code == 404


def test_a_cid_naming_another_messages_image_stays_unloaded(as_agent, inbox):
    receive(inbox, parsed(html="<p>first</p>", attachments=[image("logo@acme")]))
    second = receive(inbox, parsed(html='<img src="cid:logo@acme" alt="logo">'))
    assert image_sources(as_agent.get(html_url(second)).text) == ["cid:logo@acme"]


def test_a_tampered_or_expired_image_url_is_404(as_agent, inbox, client):
    message = receive(
        inbox, parsed(html='<img src="cid:logo@acme" alt="logo">', attachments=[image("logo@acme")])
    )
    [source] = image_sources(as_agent.get(html_url(message)).text)
    client.logout()
    assert client.get(source[:-3] + "xx/").status_code == 404
    assert client.get("/inline-images/not-a-token/").status_code == 404
    with time_machine.travel(timezone.now() + timedelta(hours=1, minutes=1)):
        assert client.get(source).status_code == 404
