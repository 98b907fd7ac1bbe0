"""email-forward-parser is asked only where it can find a forward (issue 18): skipping it never
changes what is found. The product never does worse than the library alone (G6)."""

from pathlib import Path

import pytest
from emailforwardparser import forward_parser

from inboxhub.lib.mail.forwarding import _library_may_find_forward, find_inline_forward
from inboxhub.lib.mail.parsing import parse_message
from tests.corpora import CORPORA

TESTS = Path(__file__).resolve().parents[1]
SAMPLES = TESTS / "channels_conn" / "samples"
FIXTURES = TESTS / "fixtures"


def every_message() -> list[Path]:
    paths = [*SAMPLES.glob("*/*.eml"), *FIXTURES.glob("forwards/*.eml"), *FIXTURES.glob("forwards/*/*.eml")]
    paths += FIXTURES.glob("mail/*.eml")
    if CORPORA.is_dir():
        paths += [*CORPORA.glob("cpython-email/msg_*.txt"), *CORPORA.glob("django-helpdesk/*.eml")]
        paths += CORPORA.glob("talon/standard_replies/*.eml")
    return sorted(paths)


def library_finds(text: str, subject: str | None) -> bool:
    """Whether the library reads anything of an original out of `text`: a sender, a date, a body."""
    result = forward_parser.get_forwarded_metadata(text, subject)
    original = result.email
    return bool(
        result.message or original.body or original.from_.name or original.from_.address or original.date
    )


@pytest.mark.parametrize("path", every_message(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_where_the_library_is_skipped_it_finds_nothing(path):
    parsed = parse_message(path.read_bytes())
    for text in (parsed.text, parsed.html):
        if not _library_may_find_forward(text, with_subject=False):
            assert not library_finds(text, None)
        if not _library_may_find_forward(text, with_subject=True):
            assert not library_finds(text, None)
            assert not library_finds(text, f"Fwd: {parsed.subject}")


FORWARD = (
    "FYI, see below.\r\n\r\n{separator}\r\n\r\nFrom: Jane Roe <jane@customer.example>\r\n"
    "Subject: Invoice 4711\r\nDate: 3 March 2025 at 10:00\r\nTo: ada@acme.example\r\n\r\n"
    "Please send the invoice again.\r\n"
)


@pytest.mark.parametrize(
    "separator",
    [
        "Begin\u200b forwarded message:",  # a zero-width space the library drops before it reads
        "---------- Forwar\xadded message ----------",  # a soft hyphen, likewise
        "Begin forwarded\x01 message:",  # a control character
    ],
)
def test_a_separator_only_the_library_reads_is_still_found_by_it(separator):
    forward = find_inline_forward(FORWARD.format(separator=separator), subject="Invoice")
    assert forward is not None
    assert (forward.client, forward.from_header) == ("generic", '"Jane Roe" <jane@customer.example>')
    assert forward.text == "Please send the invoice again."


def test_mail_without_any_separator_is_not_read_as_a_forward():
    text = "Hello,\n\nmy order 4711 has not arrived yet. From: the shop, as I recall.\n\nJane"
    assert not _library_may_find_forward(text, with_subject=False)
    assert find_inline_forward(text, subject="Order 4711") is None
