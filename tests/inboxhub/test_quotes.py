"""Quoted text folded on the thread (H2): our own samples, and talon's corpus of real clients' replies
measured against quotequail's `quote()` alone, which the thread must never do worse than."""

import email
import json
import re
from email import policy

import pytest
import quotequail
from lxml import html as lxml_html

from inboxhub.lib.html import sanitize_html
from inboxhub.lib.mail.quotes import Part, split_html, split_text
from tests.corpora import CORPORA

TALON = CORPORA / "talon"
needs_talon = pytest.mark.skipif(not TALON.is_dir(), reason=f"the talon corpus is not at {TALON}")


def shown(parts: list[Part]) -> str:
    """What stays outside the quote: the sender's text, with a signature folded on its own."""
    return "\n".join(part.content for part in parts if not part.quoted).strip()


def test_a_gmail_style_reply_shows_the_answer_and_folds_the_quote():
    text = "Sure, Tuesday works.\n\nOn Mon, Nov 23, 2026 at 10:00 AM Ada <ada@acme.example> wrote:\n"
    text += "> Can we meet?"
    parts = split_text(text)
    assert shown(parts) == "Sure, Tuesday works."
    assert [part.quoted for part in parts] == [False, True]
    assert "> Can we meet?" in parts[1].content


def test_an_outlook_header_block_reply_folds_from_the_header_block():
    text = (
        "Done.\n\n-----Original Message-----\nFrom: Ada <ada@acme.example>\n"
        "Sent: Monday, November 23, 2026 10:00\n"
        "To: Carol\nSubject: Invoice\n\nPlease send the invoice."
    )
    parts = split_text(text)
    assert shown(parts) == "Done."
    assert "Please send the invoice." in parts[-1].content and parts[-1].quoted


def test_a_reply_written_below_the_quote_stays_shown():
    text = "On Mon, Nov 23, 2026, Ada wrote:\n> Can we meet?\n> Tuesday?\n\nYes, Tuesday at ten."
    parts = split_text(text)
    assert [part.quoted for part in parts] == [True, False]
    assert parts[1].content.strip() == "Yes, Tuesday at ten."


def test_a_signature_below_the_standard_delimiter_folds_on_its_own():
    text = "See you then.\n\n-- \nAda Lovelace\nAcme Support\n\nOn Mon, Nov 23, 2026, Carol wrote:\n> Friday?"
    parts = split_text(text)
    assert [(part.quoted, part.signature) for part in parts] == [(False, False), (False, True), (True, False)]
    assert parts[0].content.strip() == "See you then."
    assert parts[1].content.startswith("-- \nAda Lovelace")


def test_a_lone_delimiter_at_the_end_is_no_signature():
    assert split_text("Thanks!\n--") == [Part(quoted=False, content="Thanks!\n--")]


def test_a_message_that_is_all_quote_is_not_folded_away():
    text = "> Can we meet?\n> Tuesday?\n> Or Wednesday?"
    assert split_text(text) == [Part(quoted=False, content=text)]


def test_a_detected_forward_keeps_its_forwarded_block_in_view():
    text = "FYI\n\n---------- Forwarded message ---------\n"
    text += "From: Dan <dan@x.example>\nDate: Mon\nSubject: Hi\n\nBody"
    assert split_text(text, forward=True) == [Part(quoted=False, content=text)]
    assert shown(split_text(text)) == "FYI"


def test_an_html_reply_is_cut_at_its_intro_line():
    html = "<p>Works now.</p><p>On Mon, Nov 23, 2026 at 10:00 AM Ada wrote:</p>"
    html += "<blockquote><p>Try again</p></blockquote>"
    parts = split_html(html)
    assert [part.quoted for part in parts] == [False, True]
    assert "Works now." in parts[0].content and "Try again" not in parts[0].content
    assert "Try again" in parts[1].content


def test_an_html_newsletter_without_a_quote_is_left_whole():
    html = "<table><tr><td><h1>News</h1><p>" + "<p>Item</p>" * 200 + "</td></tr></table>"
    assert split_html(html) == [Part(quoted=False, content=html)]


# --- talon's corpus of replies from real clients ---


def _first_plain(path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    return next(part.get_content() for part in message.walk() if part.get_content_type() == "text/plain")


def _visible(html: str) -> str:
    return lxml_html.fromstring(html).text_content() if html.strip() else ""


def _no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _right(entry: dict) -> tuple[bool, bool]:
    """Whether quotequail's quote() alone, and the thread's folding, leave exactly the expected reply."""
    path = TALON / entry["file"]
    expected = entry["expected_reply"].strip()
    if path.suffix == ".eml":
        text = _first_plain(path)
        library = "\n".join(part for show, part in quotequail.quote(text, quote_intro_line=True) if show)
        return library.strip() == expected, shown(split_text(text)) == expected
    # The thread folds the sanitizer's output, so both read that, as the thread would.
    html = sanitize_html(path.read_text(errors="replace")).html
    library = "".join(
        _visible(part) for show, part in quotequail.quote_html(html, quote_intro_line=True) if show
    )
    ours = "".join(_visible(sanitize_html(part.content).html) for part in split_html(html) if not part.quoted)
    return _no_space(library) == _no_space(expected), _no_space(ours) == _no_space(expected)


@needs_talon
def test_on_talons_replies_the_thread_folds_at_least_as_well_as_the_library_alone():
    entries = json.loads((TALON / "expected.json").read_text())
    results = {entry["file"]: _right(entry) for entry in entries}
    worse = [name for name, (library, ours) in results.items() if library and not ours]
    assert worse == []
    # Measured: quotequail's quote() alone 10 of 21, the thread 17 of 21 (Outlook, Hotmail and AOL
    # header blocks, bottom posting); still shown: the intro line of mail.ru, Yandex and Android
    # replies, and a Russian Windows Mail header block, which the library's patterns do not know.
    assert sum(ours for _, ours in results.values()) >= 17
    assert sum(library for library, _ in results.values()) <= sum(ours for _, ours in results.values())
