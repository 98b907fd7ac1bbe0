"""inboxhub.lib.html: the one sanitizer for mail bodies and signatures (C6, H2, rows 1-5, 32, 33)."""

import ipaddress
import json
import re
from collections import Counter
from email.message import EmailMessage

import pytest
from bleach._vendor import html5lib

from inboxhub.lib.html import sanitize_html
from ingest.pipeline import ingest_inbound
from tests.corpora import CORPORA
from tests.inboxes.helpers import address_of, default_inbox, messages_in, spool
from tests.inboxhub.bleach_reference import bleach_sanitize_html

XSS_CORPUS = CORPORA / "xss" / "vectors.json"

# The reference for "nothing here can run once a browser parses it". It is written from what
# browsers do, not from the sanitizer's allowlist (inboxhub/lib/html.py), so a mistake in that
# list cannot hide here: change the product's list and these tests still judge its output.
INERT_ELEMENTS = frozenset({
    # Text, phrase and block formatting: they display text and load nothing.
    "a", "abbr", "acronym", "address", "b", "bdi", "bdo", "big", "blockquote", "br", "center",
    "cite", "code", "dd", "del", "dfn", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small",
    "span", "strike", "strong", "sub", "sup", "tt", "u", "ul", "var", "wbr",
    # Tables, as mail is laid out.
    "caption", "col", "colgroup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
    # An image loads, but never runs; its address is checked below like every URL.
    "img",
})  # fmt: skip
URL_ATTRIBUTES = frozenset({
    "href", "src", "srcset", "imagesrcset", "action", "formaction", "background", "poster", "cite",
    "longdesc", "data", "dynsrc", "lowsrc", "codebase", "classid", "archive", "usemap", "ping",
    "icon", "manifest", "profile",
})  # fmt: skip
LIVE_SCHEME = re.compile(r"(javascript|vbscript|livescript|mhtml|data):")
# Anything in CSS that runs script or loads something, and backslash escapes that could spell it.
LIVE_STYLE = re.compile(r"expression\(|-moz-binding|url\(|behavior:|javascript:|@import|\\")
# Browsers drop ASCII tab and newline anywhere in a URL and C0 controls and spaces around it;
# dropping every one of them, Unicode spaces and zero-width characters anywhere is stricter still.
CONTROLS_AND_SPACES = re.compile(r"[\x00-\x20\x7f\s\u200b-\u200d\u2060\ufeff]+")
CSS_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.DOTALL)


def _live_url(value: str) -> bool:
    """`value` (entities already decoded by the parser) or one of its srcset candidates runs or embeds."""
    candidates = [value, *value.split(",")]
    return any(LIVE_SCHEME.match(CONTROLS_AND_SPACES.sub("", c).lower()) for c in candidates)


def problems(html: str) -> list[str]:
    """Everything in `html` that could run script once a browser parses it."""
    found = []
    tree = html5lib.parseFragment(html, namespaceHTMLElements=False)
    for element in tree.iter():
        if element is tree or not isinstance(element.tag, str):  # the fragment root, comments
            continue
        # html5lib leaves HTML elements bare and names SVG and MathML ones "{namespace}tag".
        foreign = "}" in element.tag
        tag = element.tag.rsplit("}", 1)[-1].lower()
        if foreign or tag not in INERT_ELEMENTS:
            found.append(f"<{tag}>")
        for name, value in element.attrib.items():
            name = name.rsplit("}", 1)[-1].lower() if isinstance(name, str) else str(name[-1]).lower()
            if name.startswith(("on", "hx-", "data-hx")) or name in {"id", "name", "srcdoc", "form"}:
                found.append(f"{name}= on <{tag}>")
            if name in URL_ATTRIBUTES and _live_url(value):
                found.append(f"{name}={value!r}")
            if name in {"style", "data-style"}:
                css = CONTROLS_AND_SPACES.sub("", CSS_COMMENT.sub("", value)).lower()
                if LIVE_STYLE.search(css):
                    found.append(f"{name}={value!r}")
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


@pytest.mark.parametrize(
    "live",
    [
        "<script>alert(1)</script>",
        "<p>a<style>p{width:expression(alert(1))}</style></p>",
        "<x-widget>unknown elements are not inert</x-widget>",
        "<svg><a>a foreign element of an inert name</a></svg>",
        '<p OnMouseOver="alert(1)">x</p>',
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        '<a href=" &#14;  javascript:alert(1)">x</a>',
        "<a href='\u2028java&#x200B;script:alert(1)'>x</a>",
        '<a href="&#x6A;avascript:alert(1)">x</a>',
        '<a href="VBScript:msgbox(1)">x</a>',
        '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
        '<img src="https://ok.example/x.png" srcset="https://ok.example/x.png 1x, javascript:alert(1) 2x">',
        '<p style="width: exp/**/ression(alert(1))">x</p>',
        '<p data-style="background: u\\72 l(x)">x</p>',
        '<div hx-get="/a/alpha/">x</div>',
        '<img name="cookie" src="https://ok.example/x.png">',
    ],
)
def test_the_inertness_check_catches_each_kind_of_live_markup(live):
    assert problems(live) != []


def test_the_inertness_check_passes_what_mail_formatting_needs():
    html = (
        '<p style="color: red" title="javascript: the language">Hi <b>there</b></p>'
        '<table border="1"><tbody><tr><td bgcolor="#eee">cell</td></tr></tbody></table>'
        '<a href="https://a.example/">a</a><a href="mailto:x@a.example">m</a><a href="#top">t</a>'
        '<img src="cid:logo@x" alt="Logo"><!-- a comment -->'
    )
    assert problems(html) == []


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
    assert {el.tag for el in tree.iter() if el is not tree and isinstance(el.tag, str)} <= INERT_ELEMENTS
