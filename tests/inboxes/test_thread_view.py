"""The thread page (H2): newest messages first with older ones on demand, quoted text folded, remote
images held back, inline images not listed twice, and the details a first walk-through caught."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scope

from inboxes import mail_display
from inboxes.models import Attachment, Message
from inboxes.selectors import THREAD_PAGE_SIZE
from inboxhub.lib.html import sanitize_html
from inboxhub.lib.mail.parsing import Address, ParsedAttachment
from tests.corpora import CORPORA
from tests.inboxes.helpers import attachment, forward_of, parsed, receive

pytestmark = pytest.mark.django_db
XSS_VECTORS = CORPORA / "xss" / "vectors.json"
DANGEROUS = ("<script", "onerror", "onload", "javascript:", "<svg", "<iframe", "<style", "<form", "<math")
PNG = b"\x89PNG\r\n\x1a\n fake image bytes"
GMAIL_REPLY_HTML = (
    '<div dir="ltr">Thanks, that fixed it.</div><br><div class="gmail_quote">'
    '<div dir="ltr" class="gmail_attr">On Fri, Nov 20, 2026 at 9:30 AM Support &lt;support@acme.example&gt; '
    'wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">'
    "Have you tried turning it off and on again?</blockquote></div>"
)


def thread_url(message) -> str:
    return reverse("inboxes:thread", args=[message.account.subdomain, message.conversation_id])


def html_url(message) -> str:
    return reverse("inboxes:message_html", args=[message.account.subdomain, message.pk])


@pytest.fixture
def as_agent(client, agent):
    client.force_login(agent.user)
    return client


def add_replies(first: Message, count: int, *, with_attachments: bool = False) -> list[Message]:
    """`count` more messages in the thread of `first`, a minute apart, written straight to the table."""
    with scope(account=first.account):
        replies = Message.objects.bulk_create(
            Message(
                account_id=first.account_id,
                conversation_id=first.conversation_id,
                inbox_id=first.inbox_id,
                message_id=f"{first.pk}-reply{n}@customer.example",
                from_email="carol@customer.example",
                subject=first.subject,
                text=f"Reply number {n}",
                created_at=first.created_at + timedelta(minutes=n),
                threaded_by=Message.ThreadedBy.IN_REPLY_TO,
                attributed_by=Message.AttributedBy.FROM,
            )
            for n in range(1, count + 1)
        )
        if with_attachments:
            Attachment.objects.bulk_create(
                Attachment(
                    account_id=first.account_id,
                    message=reply,
                    file=f"attachments/{reply.pk}",
                    filename=f"{reply.pk}.pdf",
                    size=2048,
                    sha256="0" * 64,
                )
                for reply in replies
            )
    return replies


def shown_texts(page: str) -> list[str]:
    return [chunk.split("<", 1)[0] for chunk in page.split("Reply number ")[1:]]


# --- Long threads (H2) ---


def test_a_long_thread_opens_on_its_newest_page_read_oldest_to_newest(as_agent, inbox):
    first = receive(inbox, parsed(text="The very first message"))
    add_replies(first, 40)
    page = as_agent.get(thread_url(first)).text
    assert page.count('class="card message') == THREAD_PAGE_SIZE
    assert shown_texts(page) == [str(n) for n in range(11, 41)]
    assert "The very first message" not in page
    assert "Show 11 older messages" in page


def test_show_older_messages_answers_the_page_before_as_a_fragment(as_agent, inbox):
    first = receive(inbox, parsed(text="The very first message"))
    add_replies(first, 40)
    page = as_agent.get(thread_url(first)).text
    older_url = page.split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    r = as_agent.get(older_url, headers={"HX-Request": "true"})
    assert "<html" not in r.text and "<h1>" not in r.text
    assert r.text.count('class="card message') == 11
    assert shown_texts(r.text) == [str(n) for n in range(1, 11)]
    assert r.text.index("The very first message") < r.text.index("Reply number 1<")
    assert "older message" not in r.text
    assert r["Vary"] and "HX-Request" in r["Vary"]


def test_a_short_thread_has_no_older_messages_link(as_agent, inbox):
    first = receive(inbox, parsed())
    add_replies(first, 3)
    page = as_agent.get(thread_url(first)).text
    assert page.count('class="card message') == 4
    assert "older message" not in page


def test_a_thread_of_400_messages_needs_the_queries_of_one_of_40(as_agent, inbox):
    first = receive(inbox, parsed(attachments=[attachment()]))
    replies = add_replies(first, 39, with_attachments=True)
    as_agent.get(thread_url(first))  # the first visit also writes the session
    with CaptureQueriesContext(connection) as forty:
        as_agent.get(thread_url(first))
    add_replies(replies[-1], 360, with_attachments=True)
    with CaptureQueriesContext(connection) as four_hundred:
        r = as_agent.get(thread_url(first))
    assert r.text.count('class="card message') == THREAD_PAGE_SIZE
    assert "Show 370 older messages" in r.text
    assert len(four_hundred.captured_queries) == len(forty.captured_queries)


def test_an_outsider_gets_404_for_the_thread_and_its_older_messages(client, outsider, inbox):
    first = receive(inbox, parsed())
    add_replies(first, 40)
    client.force_login(outsider.user)
    assert client.get(thread_url(first)).status_code == 404
    older = f"{thread_url(first)}?before=2030-01-01T00:00:00%2B00:00_999999"
    assert client.get(older, headers={"HX-Request": "true"}).status_code == 404
    assert client.get(html_url(first)).status_code == 404


# --- Quoted text ---


def test_quoted_text_of_a_plain_reply_is_folded_under_show_quoted_text(as_agent, inbox):
    text = "Thanks, that fixed it.\n\nOn Fri, Nov 20, 2026 at 9:30 AM Support wrote:\n> Try turning it off."
    message = receive(inbox, parsed(text=text))
    page = as_agent.get(thread_url(message)).text
    shown, folded = page.split("Show quoted text</summary>", 1)
    assert "Thanks, that fixed it." in shown and "Try turning it off" not in shown
    assert "&gt; Try turning it off." in folded.split("</details>", 1)[0]


def test_a_plain_signature_is_folded_under_show_signature(as_agent, inbox):
    message = receive(inbox, parsed(text="See you Friday.\n\n-- \nCarol Customer\nHead of Purchasing"))
    page = as_agent.get(thread_url(message)).text
    shown, folded = page.split("Show signature</summary>", 1)
    assert "See you Friday." in shown and "Head of Purchasing" not in shown
    assert "Head of Purchasing" in folded.split("</details>", 1)[0]


def test_a_message_without_a_quote_has_nothing_folded(as_agent, inbox):
    message = receive(inbox, parsed(text="Hello, my order has not arrived."))
    page = as_agent.get(thread_url(message)).text
    assert "Show quoted text" not in page
    assert "Hello, my order has not arrived." in page


def test_quoted_text_of_an_html_reply_is_folded_inside_its_document(as_agent, inbox):
    message = receive(inbox, parsed(html=GMAIL_REPLY_HTML, text="Thanks, that fixed it."))
    document = as_agent.get(html_url(message)).text
    shown, folded = document.split('<details class="quoted"><summary>Show quoted text</summary>', 1)
    assert "Thanks, that fixed it." in shown and "turning it off" not in shown
    assert "Have you tried turning it off and on again?" in folded


def test_a_folded_html_reply_keeps_the_sanitizers_guarantees():
    hostile = (
        "<p>Thanks</p><p>On Fri, Nov 20, 2026 at 9:30 AM Support wrote:</p>"
        "<blockquote><p>old &lt;script&gt;alert(1)&lt;/script&gt; text</p>"
        '<img src="https://tracker.example/p.gif" alt="">&lt;img src=x onerror=alert(2)&gt;</blockquote>'
    )
    folded = str(mail_display.folded_html(hostile))
    assert "<details" in folded
    assert "<script" not in folded and "<img src=x" not in folded and "onerror=alert(2)>" not in folded


@pytest.mark.skipif(not XSS_VECTORS.exists(), reason=f"the XSS corpus is not at {XSS_VECTORS}")
def test_folding_the_quote_of_every_xss_corpus_vector_adds_nothing_the_sanitizer_removed():
    vectors = [v["payload"] for v in json.loads(XSS_VECTORS.read_text()) if isinstance(v.get("payload"), str)]
    added = []
    for payload in vectors:
        clean = sanitize_html(
            f"<p>Hi</p><p>On Mon, Nov 23, 2026, Ada wrote:</p><blockquote>{payload}</blockquote>"
        )
        folded = str(mail_display.folded_html(clean.html)).lower()
        added += [(m, payload[:60]) for m in DANGEROUS if m in folded and m not in clean.html.lower()]
    assert len(vectors) > 300 and added == []


# --- Remote images ---


def test_a_message_with_remote_images_shows_the_bar_and_its_document_blocks_them(as_agent, inbox):
    message = receive(inbox, parsed(html='<p>News</p><img src="https://tracker.example/open.gif" alt="">'))
    page = as_agent.get(thread_url(message)).text
    assert "Remote images are hidden." in page
    assert f'href="{html_url(message)}?images=show" target="message-{message.pk}-html"' in page
    policy = as_agent.get(html_url(message))["Content-Security-Policy"]
    img_src = policy.split("img-src ", 1)[1].split(";", 1)[0]
    assert img_src == "data: http://testserver/inline-images/"


def test_a_remote_images_source_is_left_out_of_its_document_until_shown(as_agent, inbox):
    message = receive(inbox, parsed(html='<p><img src="https://tracker.example/open.gif" alt="Logo"></p>'))
    hidden = as_agent.get(html_url(message)).text
    assert '<img alt="Logo">' in hidden and "tracker.example" not in hidden
    shown = as_agent.get(f"{html_url(message)}?images=show").text
    assert '<img src="https://tracker.example/open.gif" alt="Logo">' in shown


def test_show_images_allows_remote_images_for_that_message_only(as_agent, inbox):
    message = receive(inbox, parsed(html='<img src="https://tracker.example/open.gif" alt="">'))
    other = receive(inbox, parsed(html='<img src="https://tracker.example/other.gif" alt="">'))
    policy = as_agent.get(f"{html_url(message)}?images=show")["Content-Security-Policy"]
    assert "img-src https: data: http://testserver/inline-images/;" in policy
    assert "allow-scripts" not in policy
    assert "https:" not in as_agent.get(html_url(other))["Content-Security-Policy"].split("img-src", 1)[1]


def test_a_message_without_remote_images_has_no_bar(as_agent, inbox):
    message = receive(inbox, parsed(html="<p>Only words</p>"))
    assert "Remote images are hidden" not in as_agent.get(thread_url(message)).text


# --- Attachments, addresses, dates, forwards ---


def test_an_image_shown_inline_is_not_listed_again_under_attachments(as_agent, inbox):
    logo = ParsedAttachment(
        filename="logo.png", content_type="image/png", payload=PNG, content_id="logo@acme", inline=True
    )
    unused = ParsedAttachment(
        filename="unused.png", content_type="image/png", payload=PNG, content_id="unused@acme", inline=True
    )
    message = receive(
        inbox,
        parsed(html='<p><img src="cid:logo@acme" alt="logo"></p>', attachments=[logo, unused, attachment()]),
    )
    listed = as_agent.get(thread_url(message)).text.split('aria-label="Attachments"', 1)[1]
    assert "invoice.pdf" in listed and "unused.png" in listed
    assert "logo.png" not in listed


def test_the_cc_row_shows_only_when_there_is_a_cc(as_agent, inbox):
    message = receive(inbox, parsed(cc=[]))
    receive(
        inbox, parsed(in_reply_to=[message.message_id], cc=[Address(name="Dave", email="dave@x.example")])
    )
    page = as_agent.get(thread_url(message)).text.split('<ol class="thread"', 1)[1].split("</ol>", 1)[0]
    assert page.count("<dt>Cc</dt>") == 1 and page.count("<dt>To</dt>") == 2
    assert "Dave &lt;dave@x.example&gt;" in page


def test_sizes_of_attachments_not_stored_read_in_words(as_agent, inbox, settings):
    settings.ATTACHMENT_MAX_BYTES = 1024
    big = attachment("plans.pdf", payload=b"x" * 3000)
    message = receive(inbox, parsed(attachments=[big]))
    page = as_agent.get(thread_url(message)).text
    assert "plans.pdf (2.9\xa0KB) — not stored: larger than 1.0\xa0KB" in page
    assert "3000" not in page and "1024 bytes" not in page


def test_why_the_html_is_not_shown_gives_sizes_in_words(as_agent, inbox, settings):
    settings.MAX_HTML_BYTES = 2048
    message = receive(inbox, parsed(html="<p>" + "news " * 1000 + "</p>", text="The news, in text."))
    page = as_agent.get(thread_url(message)).text
    assert "the whole HTML (4.9\xa0KB, over the 2.0\xa0KB limit for display)" in page


def test_a_forwarded_originals_date_reads_like_every_other_date(as_agent, inbox, agent):
    message = receive(inbox, forward_of(Address(name="", email="dan@customer.example"), by="x@y.example"))
    page = as_agent.get(thread_url(message)).text
    original = page.split('class="forwarded-original"', 1)[1].split("</details>", 1)[0]
    assert '<time datetime="2026-11-19T08:00:00+00:00">Nov. 19, 2026, 8 a.m.</time>' in original
    assert "2026-11-19T08:00:00+00:00</dd>" not in original
    assert "<dt>Cc</dt>" not in original


def test_the_forwarders_note_shows_above_the_forwarded_html(as_agent, inbox):
    forward = forward_of(
        Address(name="", email="dan@customer.example"), by="x@y.example", html="<p>My widget is broken.</p>"
    )
    message = receive(inbox, forward)
    page = as_agent.get(thread_url(message)).text
    body = page.split('class="message-body"', 1)[1]
    assert body.index("FYI") < body.index("<iframe")
    assert "wrote, forwarding it:" in body


def test_a_note_the_forwards_html_already_shows_is_not_repeated(as_agent, inbox):
    forward = forward_of(
        Address(name="", email="dan@customer.example"),
        by="x@y.example",
        html="<p>FYI</p><p>---------- Forwarded message ---------</p><p>My widget is broken.</p>",
    )
    message = receive(inbox, forward)
    assert "wrote, forwarding it:" not in as_agent.get(thread_url(message)).text
