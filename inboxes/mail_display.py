"""How a message reads on the thread page (H2): quoted text folded, inline images not listed again,
remote images held back until the agent asks, a forwarder's note in view.

Nothing here changes what is stored: it reads the sanitized HTML and the text of messages already
loaded, with no query of its own (the thread's query count stays the same whatever its length).
"""

import html as html_lib
import re
from datetime import datetime

from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from inboxes.inline_images import INLINE_IMAGE_TYPES
from inboxes.models import Message
from inboxhub.lib.html import sanitize_html
from inboxhub.lib.mail import quotes

# The sanitizer keeps image sources of https: and cid: only, and writes every attribute in double
# quotes: a remote image is an `<img … src="https:…">` (inboxes/inline_images.py reads it the same way).
_REMOTE_IMAGE = re.compile(r'<img\b[^>]*?\ssrc="https:', re.IGNORECASE)
_REMOTE_SOURCE = re.compile(r'(<img\b[^>]*?)\ssrc="https:[^"]*"', re.IGNORECASE)
_CID_SOURCE = re.compile(r'<img\b[^>]*?\ssrc="cid:([^"]*)"', re.IGNORECASE)

# How ingestion and the sanitizer word sizes and limits ("larger than 10485760 bytes",
# "(2,345,678 bytes, over the 2,097,152-byte limit"): stored as written, shown in words.
_BYTES = re.compile(r"\b(\d[\d,]*)[ -]bytes?\b")

SHOW_QUOTED = "Show quoted text"


def prepare(messages: list[Message]) -> list[Message]:
    """Set what the message partial shows on each message, from fields already loaded."""
    for message in messages:
        forward = bool(message.forwarded_original)
        message.text_parts = quotes.split_text(message.text, forward=forward)
        message.has_remote_images = has_remote_images(message.html)
        message.listed_attachments = listed_attachments(message)
        message.forwarder_note = forwarder_note(message)
        message.forwarded_date = forwarded_date(message)
        message.skipped_list = skipped_attachments(message)
        message.html_omitted_text = sizes_in_words(message.html_omitted)
    return messages


def has_remote_images(html: str) -> bool:
    return bool(html) and _REMOTE_IMAGE.search(html) is not None


def without_remote_images(html: str) -> str:
    """The HTML with the source of every remote image taken out: its alt text shows, nothing is fetched.

    The document's policy blocks remote images too; without their sources the browser does not even try,
    so the agent's console stays quiet and a tracking pixel learns nothing either way.
    """
    return _REMOTE_SOURCE.sub(r"\1", html)


def listed_attachments(message: Message) -> list:
    """The attachments to list: all but the images the HTML shows in place (`cid:`)."""
    shown = {html_lib.unescape(cid).strip("<>").lower() for cid in _CID_SOURCE.findall(message.html or "")}
    return [
        attachment
        for attachment in message.attachments.all()
        if not (
            attachment.content_id
            and attachment.content_type in INLINE_IMAGE_TYPES
            and attachment.content_id.strip("<>").lower() in shown
        )
    ]


def skipped_attachments(message: Message) -> list[dict]:
    """Attachments not stored, with sizes in words ("10.0 MB"), as every size on the page."""
    return [
        {
            "filename": skipped.get("filename", ""),
            "size": skipped.get("size"),
            "reason": sizes_in_words(skipped.get("reason", "")),
        }
        for skipped in message.skipped_attachments or []
    ]


def sizes_in_words(text: str) -> str:
    return _BYTES.sub(lambda found: filesizeformat(int(found.group(1).replace(",", ""))), text or "")


def forwarder_note(message: Message) -> str:
    """What the forwarder wrote above a forward, when the HTML shown is the original's alone.

    A forward's HTML is the original's when the forward block could be cut out of it; its text
    keeps the note on top. A note the HTML already holds is not shown twice.
    """
    original = message.forwarded_original or {}
    note = (original.get("note") or "").strip()
    if not note or not message.html:
        return ""
    first_line = html_lib.escape(note.splitlines()[0].strip(), quote=False)
    return "" if first_line and first_line in message.html else note


def forwarded_date(message: Message) -> datetime | str:
    """The forwarded original's date as a datetime, to be shown like every other date; else its text."""
    value = (message.forwarded_original or {}).get("date") or ""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return value


def folded_html(html: str, *, forward: bool = False) -> SafeString:
    """The sanitized HTML with each quoted part inside a `<details>`, which needs no script to open."""
    parts = quotes.split_html(html, forward=forward)
    if len(parts) == 1 and not parts[0].quoted:
        return mark_safe(html)  # noqa: S308 - the sanitizer's stored output (inboxhub/lib/html.py)
    # Each part is lxml's re-serialization of sanitized HTML: sanitized again before it is shown.
    clean = [(part.quoted, mark_safe(sanitize_html(part.content).html)) for part in parts]  # noqa: S308
    return format_html_join(
        "",
        "{}",
        (
            (format_html('<details class="quoted"><summary>{}</summary>{}</details>', SHOW_QUOTED, body),)
            if quoted
            else (body,)
            for quoted, body in clean
        ),
    )
