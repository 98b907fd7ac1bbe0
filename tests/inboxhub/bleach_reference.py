"""The bleach sanitizer inboxhub.lib.html used before nh3: the reference the tests compare against.

Same allowlist (imported from inboxhub.lib.html), three html5lib passes. Only tests and
bench/sanitize.py use it; it is far too slow for mail (seconds per 100 KB).
"""

from collections import Counter

import bleach
import tinycss2
from bleach import html5lib_shim
from bleach.css_sanitizer import CSSSanitizer
from bleach.sanitizer import BleachSanitizerFilter

from inboxhub.lib.html import (
    _COMMON_ATTRIBUTES,
    ALLOWED_ATTRIBUTES,
    ALLOWED_CSS_PROPERTIES,
    ALLOWED_PROTOCOLS,
    ALLOWED_TAGS,
    DROPPED_WITH_CONTENT,
    IMAGE_PROTOCOLS,
    LINK_PROTOCOLS,
    Sanitized,
    _plain_css_value,
)


class _StrictCSSSanitizer(CSSSanitizer):
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


def _allow_attribute(tag: str, name: str, value: str) -> bool:
    if name in _COMMON_ATTRIBUTES or name in ALLOWED_ATTRIBUTES.get(tag, ()):
        url = "".join(value.split()).lower()
        if tag == "img" and name == "src":
            return url.startswith(IMAGE_PROTOCOLS)
        if tag == "a" and name == "href":
            return url.startswith(LINK_PROTOCOLS) or url.startswith("#")
        return True
    return False


class _DropWithContent(html5lib_shim.Filter):
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
        self.parser = html5lib_shim.BleachHTMLParser(
            tags=ALLOWED_TAGS | DROPPED_WITH_CONTENT,
            strip=True,
            consume_entities=False,
            namespaceHTMLElements=False,
        )
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
        return Sanitized(
            html=html, removed=sorted(f"{kind} {tag} {detail}" for kind, tag, detail in before - after)
        )


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


_cleaner = _Cleaner(
    tags=ALLOWED_TAGS,
    attributes=_allow_attribute,
    protocols=ALLOWED_PROTOCOLS,
    strip=True,
    strip_comments=True,
    css_sanitizer=_StrictCSSSanitizer(),
)


def bleach_sanitize_html(html: str) -> Sanitized:
    """The former sanitize_html; its `removed` is a raw inventory difference, not the user-facing wording."""
    return _cleaner.clean_and_report(html or "")
