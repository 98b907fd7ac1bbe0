"""Whether HTML would be too costly to build a tree of, told in one linear pass before any parser runs.

The HTML tree-building algorithm (html5ever's in nh3, as every browser's) spends
time proportional to the depth of the open elements, and of the formatting
elements still active, on each tag: a few hundred kilobytes of crafted nesting
(`<b c1><b c2>…`, `<div><div>…`) held a worker for minutes. Two bounds keep one
body to about a second: MAX_NESTING, the estimated depth, and MAX_TAGS, which
also bounds what the estimate misses (bench/sanitize.py times crafted patterns,
and the slowest a fuzzing run found past the estimate). Mail clients nest a few
dozen levels, Chromium's parser stops nesting at 512, and a megabyte of
table-heavy newsletter has about 26,000 tags (Gmail clips any message over 102 KB).

The depth estimate errs high: end tags close only what they name, formatting
elements (which the parser keeps re-opening) leave only one by one, by their own
end tag, or with their table cell, and tags in comments, scripts and attribute
values count too. Paragraphs, list items, and table cells and rows close an open
sibling right above them, as the parser does, so that sloppy but ordinary HTML
(unclosed paragraphs) is not mistaken for deep.
"""

import re

MAX_NESTING = 512
MAX_TAGS = 30_000

_TAG = re.compile(r"<(/?)([a-zA-Z][^\t\n\f\r />]*+)")
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
_FORMATTING = frozenset(
    ["a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u"]
)
_CLOSES_ITS_SIBLING = frozenset(["p", "li", "dt", "dd", "option", "tr", "td", "th"])
_LIST_ITEMS = frozenset(["li", "dt", "dd"])
# A cell starts a new list of active formatting elements, which ends with the cell.
_CELLS = frozenset(["td", "th", "caption"])


def parse_cost_refusal(html: str) -> str:
    """Why building a tree of `html` would cost too much, in the reader's words; "" when it would not."""
    if html.count("<") <= MAX_NESTING:
        return ""
    tags = sum(1 for _ in _TAG.finditer(html))
    if tags > MAX_TAGS:
        return f"{tags:,} tags, over the {MAX_TAGS:,}-tag limit for display"
    if _nests_deeper_than(html, MAX_NESTING):
        return f"elements nested more than {MAX_NESTING} levels deep"
    return ""


def _nests_deeper_than(html: str, limit: int) -> bool:
    """Whether the estimated depth of open and active formatting elements passes `limit`."""
    open_elements, formatting = _Stack(), _Stack()
    # (depth of a cell among the open elements, how many formatting elements were active before it)
    cells: list[tuple[int, int]] = []
    for match in _TAG.finditer(html):
        name = match.group(2).lower()
        if name in _VOID:
            continue
        stack = formatting if name in _FORMATTING else open_elements
        if match.group(1):
            if name in _FORMATTING or name == "form":
                # The parser takes the element out and leaves active (or open) what came after it.
                stack.remove(name)
            else:
                stack.close(name)
        else:
            sibling = _open_sibling(stack.names, name)
            if sibling:
                stack.close(sibling)
            if name in _CELLS and open_elements.counts.get("table"):  # outside a table the parser drops them
                cells.append((len(open_elements.names), len(formatting.names)))
            stack.push(name)
        # A cell that closed takes the formatting elements opened in it along (the parser's marker).
        while cells and cells[-1][0] >= len(open_elements.names):
            formatting.truncate(cells.pop()[1])
        if len(open_elements.names) + len(formatting.names) > limit:
            return True
    return False


def _open_sibling(names: list[str], name: str) -> str:
    """The open element that the start tag `name` closes, as the parser does; "" for none.

    Only near the top of the stack, and past fewer elements than the parser
    passes: a miss only makes the estimate higher.
    """
    if name not in _CLOSES_ITS_SIBLING:
        return ""
    for depth, open_name in enumerate(reversed(names[-3:])):
        if open_name == name or (
            name in _LIST_ITEMS and open_name in _LIST_ITEMS and name != "li" != open_name
        ):
            return open_name
        if name in _LIST_ITEMS and open_name in ("address", "div", "p"):
            continue  # a list item closes the previous one through these
        if name == "tr" and depth == 0 and open_name in ("td", "th"):
            continue  # a row closes the previous row's last cell
        return ""
    return ""


class _Stack:
    """Element names, innermost last, with a count of each for a constant-time "is one open"."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.counts: dict[str, int] = {}

    def push(self, name: str) -> None:
        self.names.append(name)
        self.counts[name] = self.counts.get(name, 0) + 1

    def close(self, name: str) -> None:
        """Close the innermost `name` and everything opened inside it; nothing when none is open."""
        if not self.counts.get(name):
            return
        while True:  # each name popped was pushed once: linear over the whole document
            popped = self.names.pop()
            self.counts[popped] -= 1
            if popped == name:
                return

    def remove(self, name: str) -> None:
        """Take out the innermost `name` alone."""
        if self.counts.get(name):
            del self.names[len(self.names) - 1 - self.names[::-1].index(name)]
            self.counts[name] -= 1

    def truncate(self, length: int) -> None:
        while len(self.names) > length:
            self.counts[self.names.pop()] -= 1
