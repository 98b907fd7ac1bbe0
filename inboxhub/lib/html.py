"""The one HTML sanitizer: every HTML from outside (mail bodies) or from users (signatures) passes here.

An allowlist applied by nh3 (ammonia: html5ever parses the fragment as a browser would, in
Rust), with the per-tag URL rules and the CSS check in its attribute filter. What it never lets
through, and why:
- `script`, event handlers, `javascript:`/`data:` URLs: script execution.
- `svg`, `math`, `style`, `noscript`, `template`, `title`: the namespace and
  raw-text elements behind bleach's mutation-XSS advisories (CVE-2021-23980,
  CVE-2020-6816/6802) and ammonia's (RUSTSEC-2021-0074, RUSTSEC-2025-0071);
  they are dropped together with their content.
- `hx-*`/`data-*` attributes: htmx would turn them into requests (htmx docs).
- `id`, `name`, `class`: DOM clobbering and the app's own styles.
- CSS functions (`url()`, `expression()`, `-moz-binding` …): only plain
  property values of a short list of properties survive.

Why nh3 rather than bleach: bleach parsed with pure-Python html5lib, three times per call
(inventory, clean, inventory), superlinearly: a 2.6 MB newsletter outlived the worker's time
limit. nh3 parses once in Rust with the same allowlist; 1 MB of newsletter HTML now takes
about 0.15 s instead of 2-8 s (bench/sanitize.py), most of it the CSS check and the report,
in Python. A single html5lib pass or a regex pre-pass would at best have cut a third or so,
and a pre-pass is a second parser to get right. bleach stays in the tests as the reference
nh3's output is checked against (tests/inboxhub/bleach_reference.py). The `removed` report comes from a
regex inventory of tag, attribute and comment names before and after, linear in the input:
it informs (the signature editor shows it), it decides nothing.

HTML over `MAX_HTML_BYTES` is not displayed at all (the text part is): even a linear
sanitizer should not hold a worker on one body, and half a page could mislead.
The HTML tree-building algorithm itself (html5ever's as html5lib's) is superlinear on
crafted nesting: HTML too costly to build a tree of is not displayed either
(inboxhub/lib/html_nesting.py).
"""

import re
from collections import Counter
from dataclasses import dataclass, field

import nh3
import tinycss2
from django.conf import settings

from inboxhub.lib.html_nesting import parse_cost_refusal

ALLOWED_TAGS = frozenset(
    [
        "a",
        "abbr",
        "acronym",
        "address",
        "b",
        "bdi",
        "bdo",
        "big",
        "blockquote",
        "br",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "font",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "mark",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "tt",
        "u",
        "ul",
        "var",
        "wbr",
    ]
)

# Elements removed with everything inside them, not just their tags: their content is code,
# metadata or another namespace, never text for the reader.
DROPPED_WITH_CONTENT = frozenset(
    [
        "script",
        "style",
        "noscript",
        "template",
        "title",
        "head",
        "svg",
        "math",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "xmp",
        "noembed",
        "noframes",
        "plaintext",
        "textarea",
        "select",
        "option",
        "button",
        "form",
    ]
)

_COMMON_ATTRIBUTES = frozenset(["style", "title", "dir", "lang", "align"])
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "border", "hspace", "vspace"},
    "font": {"face", "color", "size"},
    "table": {"border", "cellpadding", "cellspacing", "width", "height", "bgcolor", "summary"},
    "tr": {"valign", "bgcolor", "height"},
    "td": {"colspan", "rowspan", "width", "height", "valign", "bgcolor", "nowrap"},
    "th": {"colspan", "rowspan", "width", "height", "valign", "bgcolor", "nowrap", "scope"},
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value"},
    "hr": {"width", "size", "noshade"},
    "div": {"bgcolor"},
}

# nh3 applies one scheme list to every URL attribute; _allow_attribute narrows it per tag.
ALLOWED_PROTOCOLS = frozenset(["http", "https", "mailto", "cid"])
LINK_PROTOCOLS = ("http:", "https:", "mailto:")
IMAGE_PROTOCOLS = ("https:", "cid:")

ALLOWED_CSS_PROPERTIES = frozenset(
    [
        "color",
        "background-color",
        "font",
        "font-family",
        "font-size",
        "font-style",
        "font-weight",
        "font-variant",
        "text-align",
        "text-decoration",
        "text-indent",
        "text-transform",
        "letter-spacing",
        "word-spacing",
        "line-height",
        "white-space",
        "vertical-align",
        "direction",
        "margin",
        "margin-top",
        "margin-right",
        "margin-bottom",
        "margin-left",
        "padding",
        "padding-top",
        "padding-right",
        "padding-bottom",
        "padding-left",
        "border",
        "border-top",
        "border-right",
        "border-bottom",
        "border-left",
        "border-color",
        "border-style",
        "border-width",
        "border-collapse",
        "border-spacing",
        "border-radius",
        "width",
        "min-width",
        "max-width",
        "height",
        "min-height",
        "max-height",
        "display",
        "float",
        "clear",
        "list-style-type",
        "table-layout",
    ]
)
# Colour functions are the only CSS functions kept; url(), expression(), var(), attr() … go.
_CSS_FUNCTIONS = frozenset(["rgb", "rgba", "hsl", "hsla"])


# Elements whose content the HTML tokenizer reads as text: the inventory skips to their end tag.
_RAW_TEXT = frozenset(
    ["script", "style", "xmp", "iframe", "noembed", "noframes", "noscript", "textarea", "title"]
)
# A comment, a start tag (name, attributes) or a `<!…>`/`<?…>` declaration; quoted attribute
# values may hold ">". Possessive quantifiers keep the scan linear on unterminated markup.
_MARKUP = re.compile(
    r"<!--.*?(?:--!?>|\Z)"
    r"|<([a-zA-Z][^\t\n\f\r />]*+)((?:[^>\"']++|\"[^\"]*+\"?|'[^']*+'?)*+)>?"
    r"|<[!?][^>]*+>?",
    re.DOTALL,
)
_ATTRIBUTE_NAME = re.compile(r"([^\s/>\"'=][^\s/>=]*+)(?:\s*+=\s*+(?:\"[^\"]*+\"?|'[^']*+'?|[^\s>]*+))?")
_RAW_TEXT_END = {tag: re.compile(f"</{tag}", re.IGNORECASE) for tag in _RAW_TEXT}
_SURROGATES = re.compile("[\ud800-\udfff]")


@dataclass
class Sanitized:
    html: str
    removed: list[str] = field(default_factory=list)
    omitted: str = ""  # why no HTML at all was kept, for the reader (too large or too costly)


def sanitize_html(html: str) -> Sanitized:
    """Clean HTML with the allowlist; returns the safe HTML and a list of what was removed (C6, H2)."""
    if not html:
        return Sanitized(html="")
    try:
        size = len(html.encode())
    except UnicodeEncodeError:
        # Lone surrogates (undecodable mail bytes) would make nh3 and PostgreSQL refuse the text.
        html = _SURROGATES.sub("\ufffd", html)
        size = len(html.encode())
    limit = settings.MAX_HTML_BYTES
    if size > limit:
        reason = f"the whole HTML ({size:,} bytes, over the {limit:,}-byte limit for display)"
        return Sanitized(html="", removed=[reason], omitted=reason)
    if too_costly := parse_cost_refusal(html):
        reason = f"the whole HTML ({too_costly})"
        return Sanitized(html="", removed=[reason], omitted=reason)
    restyled: Counter = Counter()
    styles: dict[str, tuple[str, bool]] = {}

    def filter_attribute(tag: str, name: str, value: str) -> str | None:
        if not _allow_attribute(tag, name, value):
            return None
        if name != "style":
            return value
        # Newsletters repeat the same few styles thousands of times.
        if value not in styles:
            styles[value] = _sanitize_css(value)
        style, complete = styles[value]
        if not complete:
            restyled[("style", tag, "")] += 1
        return style

    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=_NH3_ATTRIBUTES,
        attribute_filter=filter_attribute,
        strip_comments=True,
        link_rel=None,
        url_schemes=ALLOWED_PROTOCOLS,
    )
    return Sanitized(html=clean, removed=_describe(_inventory(html) - _inventory(clean) + restyled))


_NH3_ATTRIBUTES = {"*": set(_COMMON_ATTRIBUTES)} | {
    tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()
}


def _sanitize_css(style: str) -> tuple[str, bool]:
    """Keep allowed properties whose values hold no URLs, escapes or functions other than colours.

    Returns the kept declarations and whether nothing was dropped.
    """
    kept = []
    complete = True
    for declaration in tinycss2.parse_declaration_list(style, skip_comments=True, skip_whitespace=True):
        if (
            declaration.type != "declaration"
            or declaration.lower_name not in ALLOWED_CSS_PROPERTIES
            or not _plain_css_value(declaration.value)
        ):
            complete = False
            continue
        value = tinycss2.serialize(declaration.value).strip()
        if declaration.important:
            value += " !important"
        kept.append(f"{declaration.lower_name}: {value}")
    return "; ".join(kept), complete


def _plain_css_value(tokens) -> bool:
    for token in tokens:
        if token.type in ("url", "at-keyword", "() block", "[] block", "{} block", "error"):
            return False
        if token.type == "function" and (
            token.lower_name not in _CSS_FUNCTIONS or not _plain_css_value(token.arguments)
        ):
            return False
        if token.type in ("ident", "string") and ("\\" in token.value or "expression" in token.value.lower()):
            return False
        if token.type == "ident" and token.value.lower().startswith("-moz-"):
            return False
    return True


def _allow_attribute(tag: str, name: str, value: str) -> bool:
    if name in _COMMON_ATTRIBUTES or name in ALLOWED_ATTRIBUTES.get(tag, ()):
        url = "".join(value.split()).lower()
        if tag == "img" and name == "src":
            return url.startswith(IMAGE_PROTOCOLS)
        if tag == "a" and name == "href":
            # A relative link in mail would point into the app itself; fragments stay. cid: is for images.
            return url.startswith(LINK_PROTOCOLS) or url.startswith("#")
        return True
    return False


def _inventory(html: str) -> Counter:
    """Count tags, attributes (by name) and comments, as a tokenizer would see them."""
    found: Counter = Counter()
    position = 0
    while match := _MARKUP.search(html, position):
        position = match.end()
        tag = match.group(1)
        if tag is None:
            if not match.group().lower().startswith("<!doctype"):
                found[("comment", "", "")] += 1
            continue
        tag = tag.lower()
        found[("tag", tag, "")] += 1
        for attribute in _ATTRIBUTE_NAME.findall(match.group(2)):
            found[("attribute", tag, attribute.lower())] += 1
        if tag == "plaintext":
            break
        if tag in _RAW_TEXT:
            end = _RAW_TEXT_END[tag].search(html, position)
            if end is None:
                break
            position = end.start()
    return found


def _describe(removed: Counter) -> list[str]:
    lines = []
    for (kind, tag, detail), count in sorted(removed.items()):
        times = f" ({count}×)" if count > 1 else ""
        if kind == "tag":
            lines.append(f"<{tag}> element{times}")
        elif kind == "attribute":
            lines.append(f"{detail} attribute on <{tag}>{times}")
        elif kind == "style":
            lines.append(f"unsafe or unsupported styles on <{tag}>{times}")
        else:
            lines.append(f"HTML comment{times}")
    return lines
