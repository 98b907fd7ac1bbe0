"""Sanitizer benchmark: seconds per newsletter size, bleach (before) against nh3 (after).

    .venv/bin/python bench/sanitize.py [--no-before]

Generates table-heavy newsletter HTML (the tests' generator) of 50 KB, 240 KB, 1 MB and
2.6 MB, and times `inboxhub.lib.html.sanitize_html` (best of three) and the former bleach
sanitizer kept as the tests' reference (one run: it takes minutes at the top size).
2.6 MB is over the default MAX_HTML_BYTES, so `after` shows the refusal and
`after_uncapped` the full sanitization (the tag limit raised too).

`crafted` times markup built to make HTML tree building superlinear, each just
under MAX_TAGS, through `sanitize_html` and `html_to_text`, with the reason it was
not displayed; `at_tag_limit` the slowest such pattern found that the
nesting estimate lets through, at just under MAX_TAGS (inboxhub/lib/html_nesting.py).
Prints one JSON line.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inboxhub.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from inboxhub.lib import html_nesting  # noqa: E402
from inboxhub.lib.html import sanitize_html  # noqa: E402
from inboxhub.lib.mail.parsing import html_to_text  # noqa: E402
from tests.inboxhub.bleach_reference import bleach_sanitize_html  # noqa: E402
from tests.inboxhub.test_sanitizer import newsletter  # noqa: E402

CRAFTED = {
    "distinct formatting elements": lambda n: "".join(f"<b c{i}>" for i in range(n)),
    "open divs": lambda n: "<div>" * n,
    "forms leaving their content open": lambda n: "<form><div></form>" * n,
    "fonts of many colours": lambda n: "".join(f'<font color="#{i:06x}">x' for i in range(n)),
    "unclosed attribute quotes": lambda n: '<a b="' * n,
    "unclosed comments": lambda n: "<!--" * n,
}
# The slowest pattern a fuzzing run found past the nesting estimate: 6 tags a repetition.
AT_TAG_LIMIT = "".join(f"</tr><dd><tr><dl>x<th><ul c{i}>x" for i in range(html_nesting.MAX_TAGS // 6 - 1))

SIZES = {"50KB": 50 * 1024, "240KB": 240 * 1024, "1MB": 1024 * 1024, "2.6MB": int(2.6 * 1024 * 1024)}


def seconds(sanitize, html: str, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        sanitize(html)
        best = min(best, time.perf_counter() - start)
    return round(best, 4)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-before", action="store_true", help="skip bleach (minutes at 2.6 MB)")
    args = parser.parse_args()
    figures: dict = {
        "max_html_bytes": settings.MAX_HTML_BYTES,
        "before": {},
        "after": {},
        "after_uncapped": {},
    }
    for name, size in SIZES.items():
        html = newsletter(size)
        figures["after"][name] = seconds(sanitize_html, html, 3)
        limit, settings.MAX_HTML_BYTES = settings.MAX_HTML_BYTES, 10 * size
        tags, html_nesting.MAX_TAGS = html_nesting.MAX_TAGS, 10**9
        figures["after_uncapped"][name] = seconds(sanitize_html, html, 3)
        settings.MAX_HTML_BYTES, html_nesting.MAX_TAGS = limit, tags
        if not args.no_before:
            figures["before"][name] = seconds(bleach_sanitize_html, html, 1)
    figures["crafted"] = {}
    for name, build in CRAFTED.items():
        # Just under the tag limit, so that only the nesting estimate stands in the way.
        tags_per_repetition = build(10).count("<") / 10
        html = build(int((html_nesting.MAX_TAGS - 10) / tags_per_repetition))
        figures["crafted"][name] = {
            "bytes": len(html),
            "sanitize_s": seconds(sanitize_html, html, 1),
            "html_to_text_s": seconds(html_to_text, html, 1),
            "omitted": sanitize_html(html).omitted,
        }
    figures["at_tag_limit"] = {
        "bytes": len(AT_TAG_LIMIT),
        "sanitize_s": seconds(sanitize_html, AT_TAG_LIMIT, 1),
        "html_to_text_s": seconds(html_to_text, AT_TAG_LIMIT, 1),
        "omitted": sanitize_html(AT_TAG_LIMIT).omitted,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
