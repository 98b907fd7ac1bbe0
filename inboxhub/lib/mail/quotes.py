"""Quoted text in a message (H2): what the sender wrote stays in view, what they quoted is folded away,
and so is a plain-text signature below the standard delimiter.

quotequail (Close) finds the quote, in plain text and in HTML alike: an intro line ("On … wrote:",
"-----Original Message-----", "Begin forwarded message:" in several languages), the header block
Outlook, AOL and Yahoo put above the quoted message ("From: … Sent: … To: …"), or `>`/<blockquote>
quoting; and a reply written below the quote (bottom posting) stays shown. Its `unwrap` reads the
text above and below the quote but hands back only trimmed copies, and its `quote` misses header
blocks and bottom posting, so the line ranges come from the same functions one level down, pinned
with the package's exact version (pyproject.toml). No pattern of our own.

HTML here is the sanitizer's output; the caller sanitizes each part again before showing it,
because the parts are lxml's re-serialization.
"""

from dataclasses import dataclass

from quotequail import _html, _internal, _patterns

# Past this many lines the quote is looked for in the first lines only: the intro line of a
# quoted reply sits near the top, and a huge body must not hold a request.
MAX_LINES = 2_000
# HTML bigger than this is a newsletter or a report, not a reply: shown whole, never parsed twice.
MAX_HTML_CHARS = 300_000


# The signature delimiter of RFC 3676 (4.3), "-- " alone on a line; many servers strip the space.
SIGNATURE_DELIMITERS = ("-- ", "--")


@dataclass(frozen=True)
class Part:
    quoted: bool
    content: str
    signature: bool = False  # the sender's own signature, below the delimiter


def split_text(text: str, *, forward: bool = False) -> list[Part]:
    """The text in parts: quoted, a signature, or neither; one plain part when there is nothing to fold.

    `forward`: the message is a detected forward, whose forwarded block is the message itself.
    """
    lines = text.split("\n")
    found = _quoted_range(lines[:MAX_LINES], forward=forward, min_quoted_lines=_patterns.MIN_QUOTED_LINES)
    if found is None:
        return _with_signature([Part(quoted=False, content=text)])
    start, end = found
    if len(lines) > MAX_LINES and end == min(len(lines), MAX_LINES):
        end = len(lines)
    pieces = [
        Part(False, "\n".join(lines[:start])),
        Part(True, "\n".join(lines[start:end])),
        Part(False, "\n".join(lines[end:])),
    ]
    return _with_signature([piece for piece in pieces if piece.content.strip()])


def _with_signature(parts: list[Part]) -> list[Part]:
    """The sender's own text (the first unquoted part) with its delimited signature as a part of its own."""
    own = next((n for n, part in enumerate(parts) if not part.quoted), None)
    if own is None:
        return parts
    lines = parts[own].content.split("\n")
    for n, line in enumerate(lines[:MAX_LINES]):
        if line.rstrip("\r") in SIGNATURE_DELIMITERS and any(above.strip() for above in lines[:n]):
            if not any(below.strip() for below in lines[n + 1 :]):
                break
            split = [Part(False, "\n".join(lines[:n])), Part(False, "\n".join(lines[n:]), signature=True)]
            return parts[:own] + split + parts[own + 1 :]
    return parts


def split_html(html: str, *, forward: bool = False) -> list[Part]:
    """The HTML in parts, quoted or not, each a fragment; one unquoted part when nothing is quoted."""
    if not html.strip() or len(html) > MAX_HTML_CHARS:
        return [Part(quoted=False, content=html)]
    tree = _html.get_html_tree(html)
    start_refs, end_refs, lines = _html.get_line_info(tree)
    found = _quoted_range(lines, forward=forward, min_quoted_lines=1)
    if found is None:
        return [Part(quoted=False, content=html)]
    start, end = found
    pieces = []
    for quoted, bounds in ((False, (None, start)), (True, (start, end)), (False, (end, None))):
        if not any(line.strip("> ") for line in lines[bounds[0] : bounds[1]]):
            continue
        piece = _html.slice_tree(tree, start_refs, end_refs, bounds, html_copy=html)
        pieces.append(Part(quoted, _html.render_html_tree(piece)))
    return pieces


def _quoted_range(lines: list[str], *, forward: bool, min_quoted_lines: int) -> tuple[int, int] | None:
    """Line numbers [start, end) of the quote, when there is one and something outside it to show."""
    found = _internal.unwrap(lines, _patterns.MAX_WRAP_LINES, _patterns.MIN_HEADER_LINES, min_quoted_lines)
    if found is None:
        return None
    kind, top, _headers, _main, bottom, _unindent = found
    if forward and kind == "forward":
        return None
    start = top[1] if top and top[1] is not None else 0
    end = bottom[0] if bottom and bottom[0] is not None else len(lines)
    outside = lines[:start] + lines[end:]
    if start >= end or not any(line.strip("> ") for line in outside):
        return None
    return start, end
