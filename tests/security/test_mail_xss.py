"""B8 and advisories 1–3, 33: hostile mail HTML is served inert, from the server's side.

The browser half of B8 (each of the 353 corpus vectors opened in the thread view in Chromium: no
dialog, no request leaves, frames sandboxed without allow-scripts) is in
tests/e2e/test_agent_journey.py, where the browser fixtures live.

Already covered elsewhere, not repeated here:
- tests/inboxhub/test_sanitizer.py: every corpus vector sanitized (and re-sanitized) is inert;
  `hx-*`/`data-hx-*` stripped (row 33); the bleach mXSS combination (row 32).
- tests/channels_conn/test_signature.py: signatures (row 5, B10).
- tests/inboxes/test_attachments.py: HTML and SVG attachments as opaque downloads with nosniff
  and RFC 6266 `filename*` (rows 3, 7).
- tests/inboxes/test_pages.py: the thread's iframe sandbox; mail HTML served with a sandbox CSP.
"""

import json
import re
from pathlib import Path

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from inboxes.mail_display import SHOW_QUOTED, folded_html
from inboxes.models import Message
from inboxhub.celery import app as celery_app
from inboxhub.lib.html import sanitize_html
from tests.inboxes.helpers import address_of, default_inbox
from tests.inboxhub.test_sanitizer import CLASSIC_VECTORS, XSS_CORPUS, problems
from tests.security.conftest import customer_mail, each, receive_mail
from tests.smarthost import smarthost

ROOT = Path(__file__).resolve().parents[2]
FOLD = f'<details class="quoted"><summary>{SHOW_QUOTED}</summary>'
HOSTILE = (
    "<p>Hello</p><img src=x onerror=alert(1)><svg onload=alert(2)></svg><script>alert(3)</script>"
    '<a href="javascript:alert(4)">x</a><div hx-get="/a/alpha/settings/" hx-trigger="load">h</div>'
    '<p data-hx-post="/a/alpha/inbox/" hx-on:click="alert(5)">p</p><base href="https://evil.example/">'
    '<form action="https://evil.example/"><input name=q></form><meta http-equiv="refresh" content="0;url=/">'
)


def vectors() -> list[tuple[str]]:
    corpus = json.loads(XSS_CORPUS.read_text()) if XSS_CORPUS.exists() else []
    return [(payload,) for payload in [*CLASSIC_VECTORS, *(e["payload"] for e in corpus)]]


def quoted_reply(payload: str) -> str:
    """The payload inside a Gmail-style quote, so the thread folds it (re-serialized by lxml)."""
    return (
        '<div dir="ltr">Thanks!</div><div class="gmail_quote">'
        '<div class="gmail_attr">On Mon, Carol wrote:</div>'
        f'<blockquote class="gmail_quote">{payload}</blockquote></div>'
    )


def test_every_vector_stays_inert_when_the_thread_folds_its_quoted_part():
    """mXSS through the quote folding: its parts are parsed and serialized again before they show."""

    def check(payload):
        for html in (payload, quoted_reply(payload)):
            stored = sanitize_html(html).html
            for forward in (False, True):
                shown = str(folded_html(stored, forward=forward))
                # The fold itself is the product's markup; whatever the mail brought must be inert.
                mail_part = shown.replace(FOLD, "").replace("</details>", "")
                assert problems(mail_part) == [], (html, shown)

    assert len(vectors()) > 350 or not XSS_CORPUS.exists()
    each(vectors(), check)


@pytest.mark.django_db
def test_a_hostile_mail_is_served_sanitized_in_a_sandbox_without_scripts(client, world):
    conversation = receive_mail(
        world.a.open.inbox,
        customer_mail(
            address_of(world.a.open.inbox),
            sender="Mallory <mallory@hostile.example>",
            subject="Hostile",
            message_id="hostile@hostile.example",
            html=HOSTILE,
        ),
    )
    with scopes_disabled():
        message = Message.objects.get(conversation=conversation, direction="incoming")
    client.force_login(world.a.members["bob"].user)

    served = client.get(reverse("inboxes:message_html", args=["alpha", message.pk]))
    thread = client.get(reverse("inboxes:thread", args=["alpha", conversation.pk])).text

    policy = [d.strip() for d in served["Content-Security-Policy"].split(";")]
    assert policy[0].startswith("sandbox") and "allow-scripts" not in policy[0]
    assert "form-action 'none'" in policy and "base-uri 'none'" in policy
    assert served["X-Content-Type-Options"] == "nosniff"
    body = served.content.decode().split("<body>", 1)[1]
    assert problems(body) == [], body
    assert "Hello" in body
    [sandbox] = re.findall(r'<iframe class="message-html"[^>]* sandbox="([^"]*)"', thread)
    assert "allow-scripts" not in sandbox.split()
    assert 'class="message-body" hx-disable' in thread
    assert 'hx-get="/a/alpha/settings/"' not in thread and "hx-trigger" not in thread


@pytest.mark.django_db
def test_a_reply_to_a_hostile_mail_carries_none_of_its_html(
    client, world, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """Row 2: outbound mail is built from the agent's text and the sanitized signature only."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    inbox = default_inbox(world.a.account)
    conversation = receive_mail(
        inbox,
        customer_mail(
            address_of(inbox),
            sender="Mallory <mallory@hostile.example>",
            subject="Hostile",
            message_id="hostile2@hostile.example",
            html=HOSTILE,
        ),
    )
    client.force_login(world.a.admin.user)

    with smarthost(settings) as capture, django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("inboxes:reply", args=["alpha", conversation.pk]), {"body": "We looked at it."})

    [(_, mail)] = capture.messages
    texts = [part.get_content() for part in mail.walk() if part.get_content_maintype() == "text"]
    assert texts and any("We looked at it." in text for text in texts)
    for text in texts:
        assert "onerror" not in text and "hx-get" not in text and "<script" not in text


# --- row 2: `|safe` and `mark_safe` only on the sanitizer's output ---

# Each `|safe` in a template, and where what it marks safe was sanitized.
SAFE_IN_TEMPLATES = {
    "signature_for_editor": "channels_conn: the stored signature, sanitized on save (C6)",
    "preview.signature": "channels_conn.selectors.render_signature: sanitized, tokens escaped",
    "composer.signature": "inboxes.replies.composer_context: the same render_signature",
}
SAFE_FILTER = re.compile(r"\{\{\s*([^}|]+?)\s*\|\s*safe\s*\}\}")


def test_every_safe_filter_in_a_template_marks_only_sanitized_html():
    found = {}
    for path in (ROOT / "templates").rglob("*.html"):
        for expression in SAFE_FILTER.findall(path.read_text()):
            found.setdefault(expression.strip(), []).append(str(path.relative_to(ROOT)))
    unknown = {e: where for e, where in found.items() if e not in SAFE_IN_TEMPLATES}
    assert unknown == {}, (
        "A template marks something safe that this test does not know to be sanitized: "
        f"{unknown}. Render the sanitizer's output (inboxhub/lib/html.py) and add it to SAFE_IN_TEMPLATES."
    )


def test_autoescape_is_turned_off_only_in_plain_text_mail_templates():
    for path in (ROOT / "templates").rglob("*"):
        if path.is_file() and "autoescape off" in path.read_text():
            assert path.suffix == ".txt" or "email" in path.name, f"{path}: only plain-text mail may"


def test_mark_safe_in_product_code_wraps_only_the_sanitizers_output():
    product = [ROOT / d for d in ("inboxhub", "inboxes", "channels_conn", "routing", "tickets", "ingest")]
    offenders = []
    for directory in product:
        for path in directory.rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if "mark_safe(" in line and "import" not in line and "sanitiz" not in line:
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
