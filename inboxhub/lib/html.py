"""The one HTML sanitizer: every HTML from outside (mail bodies) or from users (signatures) passes here.

Built on bleach with an allowlist. What it never lets through, and why:
- `script`, event handlers, `javascript:`/`data:` URLs: script execution.
- `svg`, `math`, `style`, `noscript`, `template`, `title`: the namespace and
  raw-text elements behind bleach's mutation-XSS advisories (CVE-2021-23980,
  CVE-2020-6816/6802); they are dropped together with their content.
- `hx-*`/`data-*` attributes: htmx would turn them into requests (htmx docs).
- `id`, `name`, `class`: DOM clobbering and the app's own styles.
- CSS functions (`url()`, `expression()`, `-moz-binding` …): only plain
  property values of a short list of properties survive.
"""

from collections import Counter
from dataclasses import dataclass, field

import bleach
import tinycss2
from bleach import html5lib_shim
from bleach.css_sanitizer import CSSSanitizer
from bleach.sanitizer import BleachSanitizerFilter

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

# bleach applies one protocol list to every URL attribute; _allow_attribute narrows it per tag.
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


@dataclass
class Sanitized:
    html: str
    removed: list[str] = field(default_factory=list)


class _StrictCSSSanitizer(CSSSanitizer):
    """Keep allowed properties whose values hold no URLs, escapes or functions other than colours."""

    def __init__(self) -> None:
        super().__init__(allowed_css_properties=ALLOWED_CSS_PROPERTIES, allowed_svg_properties=frozenset())

    def sanitize_css(self, style: str) -> str:
        kept = []
        for declaration in tinycss2.parse_declaration_list(style, skip_comments=True, skip_whitespace=True):
            if declaration.type != "declaration" or declaration.lower_name not in ALLOWED_CSS_PROPERTIES:
                continue
            if not _plain_css_value(declaration.value):
                continue
            value = tinycss2.serialize(declaration.value).strip()
            if declaration.important:
                value += " !important"
            kept.append(f"{declaration.lower_name}: {value}")
        return "; ".join(kept)


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


class _DropWithContent(html5lib_shim.Filter):
    """Remove dangerous elements and all they contain, before the allowlist strips tags."""

    def __iter__(self):
        depth = 0
        for token in super().__iter__():
            kind = token["type"]
            if depth:
                if kind == "StartTag":
                    depth += 1
                elif kind == "EndTag":
                    depth -= 1
                continue
            if kind in ("StartTag", "EmptyTag") and token["name"] in DROPPED_WITH_CONTENT:
                depth = 1 if kind == "StartTag" else 0
                continue
            yield token


class _Cleaner(bleach.Cleaner):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # bleach's tokenizer turns tags outside its list into text, which would keep the content
        # of <script> or <style> as text; let those through to _DropWithContent instead.
        self.parser = html5lib_shim.BleachHTMLParser(
            tags=ALLOWED_TAGS | DROPPED_WITH_CONTENT,
            strip=True,
            consume_entities=False,
            namespaceHTMLElements=False,
        )
        # Sees every tag, for the report of what was removed.
        self.inventory_parser = html5lib_shim.BleachHTMLParser(
            tags=None, strip=True, consume_entities=False, namespaceHTMLElements=False
        )

    def clean_and_report(self, text: str) -> Sanitized:
        if not text:
            return Sanitized(html="")
        before = _inventory(self.walker(self.inventory_parser.parseFragment(text)))
        dom = self.parser.parseFragment(text)
        filtered = BleachSanitizerFilter(
            source=_DropWithContent(self.walker(dom)),
            allowed_tags=self.tags,
            attributes=self.attributes,
            strip_disallowed_tags=self.strip,
            strip_html_comments=self.strip_comments,
            css_sanitizer=self.css_sanitizer,
            allowed_protocols=self.protocols,
        )
        html = self.serializer.render(filtered)
        after = _inventory(self.walker(self.inventory_parser.parseFragment(html)))
        return Sanitized(html=html, removed=_describe(before - after))


def _inventory(tokens) -> Counter:
    found: Counter = Counter()
    for token in tokens:
        kind = token["type"]
        if kind in ("StartTag", "EmptyTag"):
            tag = token["name"]
            found[("tag", tag, "")] += 1
            for (_namespace, attribute), value in token["data"].items():
                found[("attribute", tag, attribute)] += 1
                if attribute == "style":
                    found[("style", tag, value)] += 1
        elif kind == "Comment":
            found[("comment", "", "")] += 1
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


_cleaner = _Cleaner(
    tags=ALLOWED_TAGS,
    attributes=_allow_attribute,
    protocols=ALLOWED_PROTOCOLS,
    strip=True,
    strip_comments=True,
    css_sanitizer=_StrictCSSSanitizer(),
)


def sanitize_html(html: str) -> Sanitized:
    """Clean HTML with the allowlist; returns the safe HTML and a list of what was removed (C6, H2)."""
    return _cleaner.clean_and_report(html or "")
