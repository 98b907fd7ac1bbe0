"""C6, B10, rows 5, 32, 33: a signature is sanitized on save and in the preview; removals are reported."""

import json
import re

import pytest
from bleach._vendor import html5lib
from django_scopes import scope, scopes_disabled

from channels_conn.models import FallbackAddress
from channels_conn.selectors import render_signature
from channels_conn.services import update_fallback_address
from inboxes.models import Inbox
from tests.inboxhub.test_sanitizer import CLASSIC_VECTORS, XSS_CORPUS, problems

# Signature-specific vectors on top of the sanitizer's classic list: at least 30 in all.
SIGNATURE_VECTORS = [
    *CLASSIC_VECTORS,
    '<a href="java\nscript:alert(1)">x</a>',
    '<a href="&#x6A;avascript:alert(1)">x</a>',
    '<img src="http://tracker.example/pixel.gif">',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<font face="Georgia" onmouseover="alert(1)">x</font>',
    '<b style="color: red; background: url(javascript:alert(1))">x</b>',
    '<p style="width: expression(alert(1))">x</p>',
    '<span hx-get="/a/alpha/settings/members/" hx-trigger="load" hx-target="body">x</span>',
    '<div hx-on::after-request="alert(1)">x</div>',
    "<math><style><img src=x onerror=alert(1)></style></math>",
    "<svg><style>*{}</style><foreignObject><img src=x onerror=alert(1)></foreignObject></svg>",
    "<noscript><style></noscript><img src=x onerror=alert(1)></style>",
    '<a href="https://ok.example/" target="_blank" rel="opener">x</a>',
    "<link rel=stylesheet href=https://evil.example/x.css>",
    '<img src="https://ok.example/x.png" srcset="javascript:alert(1) 1x">',
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
]


def corpus() -> list[str]:
    if not XSS_CORPUS.exists():
        return []
    return [entry["payload"] for entry in json.loads(XSS_CORPUS.read_text())]


@pytest.fixture
def fallback(admin) -> FallbackAddress:
    return FallbackAddress.objects.select_related("account").get(
        account=admin.account, channel__inbox__is_default=True
    )


def save_signature(fallback: FallbackAddress, html: str, by) -> list[str]:
    with scope(account=fallback.account):
        return update_fallback_address(
            fallback,
            send_from=True,
            from_name_mode="agent_and_company",
            company_name="Alpha",
            from_address_mode="default",
            custom_from_address="",
            signature_html=html,
            select_original_sender=True,
            by=by,
        )


def stored(fallback: FallbackAddress) -> str:
    with scopes_disabled():
        return FallbackAddress.objects.get(pk=fallback.pk).signature_html


def preview_fragment(html: str) -> str:
    """The signature as the page shows it (the part rendered with |safe)."""
    match = re.search(r'<div class="email-preview-signature"[^>]*>(.*?)</div>\s*</div>', html, re.S)
    assert match, "no signature in the preview"
    return match.group(1)


def test_there_are_at_least_30_classic_vectors():
    assert len(SIGNATURE_VECTORS) >= 30


@pytest.mark.parametrize("payload", SIGNATURE_VECTORS)
def test_a_classic_vector_saved_as_a_signature_is_stored_inert(admin, fallback, payload):
    save_signature(fallback, f"<p>Jane</p>{payload}", admin)

    html = stored(fallback)
    assert problems(html) == [], html
    with scope(account=admin.account):
        assert problems(render_signature(html, admin)) == []
    assert "hx-" not in html and "javascript:" not in html.lower()


@pytest.mark.skipif(not XSS_CORPUS.exists(), reason=f"XSS corpus not found at {XSS_CORPUS}")
def test_a_signature_made_of_every_corpus_payload_is_stored_inert(admin, fallback):
    removed = []
    for payload in corpus():
        removed += save_signature(fallback, payload, admin)
        html = stored(fallback)
        assert problems(html) == [], (payload, html)
        with scope(account=admin.account):
            assert problems(render_signature(html, admin)) == [], payload
    assert removed, "the corpus holds things to remove"


@pytest.mark.skipif(not XSS_CORPUS.exists(), reason=f"XSS corpus not found at {XSS_CORPUS}")
def test_the_corpus_in_one_signature_through_the_page_shows_nothing_live(client, admin, fallback):
    client.force_login(admin.user)
    with scopes_disabled():
        inbox = Inbox.objects.get(pk=fallback.channel.inbox_id)
    url = f"/a/alpha/settings/inboxes/{inbox.pk}/fallback/"
    signature = "".join(corpus())[:20_000]
    data = {
        "send_from": "on",
        "from_name_mode": "company",
        "company_name": "Alpha",
        "from_address_mode": "default",
        "signature_html": signature,
    }

    saved = client.post(url, data, follow=True)
    preview = client.post(url + "preview/", data, headers={"HX-Request": "true"})

    assert problems(stored(fallback)) == []
    assert problems(preview_fragment(saved.text)) == []
    assert problems(preview_fragment(preview.text)) == []
    assert "Removed from the signature because it is not safe in email:" in saved.text


def test_what_was_removed_is_reported_to_the_editor(client, admin, fallback):
    client.force_login(admin.user)
    url = f"/a/alpha/settings/inboxes/{fallback.channel.inbox_id}/fallback/"

    r = client.post(
        url,
        {
            "from_name_mode": "company",
            "company_name": "Alpha",
            "from_address_mode": "default",
            "signature_html": '<p onclick="x()">Hi</p><script>alert(1)</script><a href="javascript:x">l</a>'
            '<span hx-get="/x">s</span>',
        },
        follow=True,
    )

    assert "Removed from the signature because it is not safe in email:" in r.text
    for item in ("onclick attribute on &lt;p&gt;", "&lt;script&gt; element", "href attribute on &lt;a&gt;"):
        assert item in r.text
    assert "hx-get attribute on &lt;span&gt;" in r.text
    assert stored(fallback) == "<p>Hi</p><a>l</a><span>s</span>"


def test_a_clean_signature_reports_nothing_removed(client, admin, fallback):
    client.force_login(admin.user)
    url = f"/a/alpha/settings/inboxes/{fallback.channel.inbox_id}/fallback/"

    r = client.post(
        url,
        {
            "from_name_mode": "company",
            "company_name": "Alpha",
            "from_address_mode": "default",
            "signature_html": "<b>Hi</b>",
        },
        follow=True,
    )

    assert "Fallback address settings saved." in r.text
    assert "Removed from the signature" not in r.text


def test_font_face_bold_italic_underline_links_and_images_are_kept(admin, fallback):
    html = (
        '<p><font face="Georgia">Jane</font> <b>B</b> <i>I</i> <u>U</u> '
        '<a href="https://alpha.example/">site</a> <a href="mailto:help@alpha.example">mail</a> '
        '<img src="https://alpha.example/logo.png" alt="Alpha"> <img src="cid:logo@alpha"></p>'
    )

    assert save_signature(fallback, html, admin) == []

    assert stored(fallback) == html


def test_links_other_than_http_https_mailto_and_images_other_than_https_cid_lose_their_address(
    admin, fallback
):
    save_signature(
        fallback,
        '<a href="ftp://alpha.example/">f</a><a href="tel:123">t</a>'
        '<img src="http://alpha.example/x.png"><img src="data:image/png;base64,AAAA">',
        admin,
    )

    assert stored(fallback) == "<a>f</a><a>t</a><img><img>"


def test_tokens_are_filled_with_the_agents_name(admin, fallback):
    save_signature(fallback, "<p>{{full_name}} / {{first_name}} / {{last_name}}</p>", admin)

    with scope(account=admin.account):
        assert render_signature(stored(fallback), admin) == "<p>Alice Admin / Alice / Admin</p>"


def test_a_hostile_agent_name_in_a_token_stays_text_even_inside_an_attribute(admin, fallback):
    admin.user.full_name = 'javascript:alert(1)" onmouseover="alert(2)'
    save_signature(
        fallback, '<a href="https://x.example/{{full_name}}" title="{{full_name}}">{{full_name}}</a>', admin
    )

    with scope(account=admin.account):
        html = render_signature(stored(fallback), admin)

    assert problems(html) == []
    elements = html5lib.parseFragment(html, namespaceHTMLElements=False).iter()
    assert not any("onmouseover" in el.attrib for el in elements if isinstance(el.tag, str))


def test_a_signature_over_20000_characters_is_refused(client, admin, fallback):
    client.force_login(admin.user)
    url = f"/a/alpha/settings/inboxes/{fallback.channel.inbox_id}/fallback/"

    r = client.post(
        url,
        {
            "from_name_mode": "company",
            "company_name": "Alpha",
            "from_address_mode": "default",
            "signature_html": "x" * 20_001,
        },
    )

    assert r.status_code == 400
    assert "Ensure this value has at most 20000 characters (it has 20001)." in r.text
    assert stored(fallback) == ""


def test_the_rich_text_mode_gets_the_html_sanitized_with_styles_as_data(client, admin, fallback):
    client.force_login(admin.user)
    url = f"/a/alpha/settings/inboxes/{fallback.channel.inbox_id}/fallback/signature/editor-html/"

    r = client.post(
        url, {"signature_html": '<p style="color: red" onclick="x()">Hi</p><script>alert(1)</script>'}
    )

    assert r.status_code == 200
    assert r.text == '<p data-style="color: red">Hi</p>'
    assert stored(fallback) == ""


def test_an_outsider_gets_404_from_the_rich_text_endpoint(client, outsider, fallback):
    client.force_login(outsider.user)
    url = f"/a/alpha/settings/inboxes/{fallback.channel.inbox_id}/fallback/signature/editor-html/"

    assert client.post(url, {"signature_html": "<b>x</b>"}).status_code == 404
