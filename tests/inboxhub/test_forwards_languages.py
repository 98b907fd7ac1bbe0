"""Forwards from every client and language (G6, issue #15): InboxHub's own forwards per client x
language (tests/fixtures/forwards/), never worse than email-forward-parser alone, and no forward
found on replies, newsletters, ordinary mail or the shared corpora."""

import json
from datetime import datetime, timedelta, timezone
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from emailforwardparser import forward_parser

from inboxhub.lib.mail.forwarding import parse_forward_date
from inboxhub.lib.mail.parsing import parse_message
from tests.corpora import CORPORA

FORWARDS = Path(__file__).resolve().parents[1] / "fixtures" / "forwards"
EXPECTED = json.loads((FORWARDS / "expected.json").read_text("utf-8"))
NOT_FORWARDS = sorted(p.name for p in (FORWARDS / "not_forwards").glob("*.eml"))
SAMPLES = Path(__file__).resolve().parents[1] / "channels_conn" / "samples"
# The shared corpora's forwards and the sender each names; every other message there is none.
CORPUS_FORWARDS = {
    "django-helpdesk/forwarded-message.eml": ("GitHub", "noreply@github.com"),
    "django-helpdesk/utf-nondecodable.eml": ("Nikola", "nikola@example.cz"),
    "cpython-email/msg_06.txt": ("Barry A. Warsaw", "barry@python.org"),
    "cpython-email/msg_46.txt": ("Dr. Sender", "sender@example.net"),
}
CET = timezone(timedelta(hours=1))
needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"the shared corpora are not at {CORPORA}")


def corpus_messages() -> list[str]:
    if not CORPORA.is_dir():
        return []
    paths = [*CORPORA.glob("cpython-email/msg_*.txt"), *CORPORA.glob("talon/standard_replies/*.eml")]
    paths += CORPORA.glob("django-helpdesk/*.eml")
    return sorted(
        str(p.relative_to(CORPORA)) for p in paths if str(p.relative_to(CORPORA)) not in CORPUS_FORWARDS
    )


def forward_of(name: str):
    return parse_message((FORWARDS / name).read_bytes()).forwarded


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_client_and_language_gives_the_original_sender(name):
    sender = forward_of(name).sender
    assert (sender.name, sender.email) == (EXPECTED[name]["sender_name"], EXPECTED[name]["sender_email"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_client_and_language_gives_the_original_subject(name):
    assert forward_of(name).subject == EXPECTED[name]["subject"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_client_is_named(name):
    assert forward_of(name).client == EXPECTED[name]["client"]


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if EXPECTED[n]["client"] != "rfc822"))
def test_the_text_keeps_the_original_body_without_the_forward_block(name):
    parsed = parse_message((FORWARDS / name).read_bytes())
    assert "4711" in parsed.forwarded.text
    # A name-only block has no address to look for: its subject line is gone with it.
    block_mark = EXPECTED[name]["sender_email"] or f": {EXPECTED[name]['subject']}"
    assert block_mark not in parsed.text_without_forward_header


def library_sender(raw: bytes) -> tuple[str, str] | None:
    """email-forward-parser alone on the text the product reads, with the subject, then without."""
    parsed = parse_message(raw)
    for subject in (parsed.subject, None):
        result = forward_parser.get_forwarded_metadata(parsed.text, subject)
        if result.forwarded and result.email.from_.address:
            return result.email.from_.name, result.email.from_.address.lower()
    return None


ALL_INLINE = [FORWARDS / n for n in sorted(EXPECTED) if EXPECTED[n]["client"] != "rfc822"]
ALL_INLINE += sorted((SAMPLES / "forwards").glob("*.eml")) + [SAMPLES / "other" / "generic_gmail_it.eml"]


@pytest.mark.parametrize("path", ALL_INLINE, ids=lambda path: path.name)
def test_where_the_library_alone_finds_the_sender_the_product_finds_the_same(path):
    raw = path.read_bytes()
    found = library_sender(raw)
    if found is None:
        return
    sender = parse_message(raw).forwarded.sender
    assert sender.email == found[1]


@pytest.mark.parametrize("name", NOT_FORWARDS)
def test_replies_newsletters_prose_and_prefix_only_mail_are_not_forwards(name):
    parsed = parse_message((FORWARDS / "not_forwards" / name).read_bytes())
    assert parsed.forwarded is None
    assert parsed.text_without_forward_header == parsed.text


@needs_corpora
@pytest.mark.parametrize("name", corpus_messages())
def test_no_message_of_the_shared_corpora_is_taken_for_a_forward_from_someone(name):
    # cpython-email's msg_11 is a bare message/rfc822 enclosure of a message without From: read as an
    # attached forward, it names nobody, so nothing about a sender is claimed.
    forwarded = parse_message((CORPORA / name).read_bytes()).forwarded
    assert forwarded is None or (name == "cpython-email/msg_11.txt" and forwarded.sender.email == "")


@needs_corpora
@pytest.mark.parametrize("name", sorted(CORPUS_FORWARDS))
def test_the_forwards_of_the_shared_corpora_give_their_sender(name):
    sender = parse_message((CORPORA / name).read_bytes()).forwarded.sender
    assert (sender.name, sender.email) == CORPUS_FORWARDS[name]


@needs_corpora
@pytest.mark.parametrize("name", sorted(p.name for p in CORPORA.glob("talon/html_replies/*.html")))
def test_talons_html_replies_are_not_forwards(name):
    page = (CORPORA / "talon" / "html_replies" / name).read_bytes()
    raw = b'From: me@example.com\nSubject: Re: Test\nContent-Type: text/html; charset="utf-8"\n\n' + page
    assert parse_message(raw).forwarded is None


def test_a_bounce_signed_mail_delivery_subsystem_carries_no_forward():
    raw = (
        b"From: Mail Delivery Subsystem <daemon@mx.example>\nSubject: Returned mail\n"
        b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\nUndeliverable.\n\n--b\n'
        b"Content-Type: message/rfc822\n\nFrom: jane@customer.example\nSubject: hi\n\nhi\n--b--\n"
    )
    assert parse_message(raw).forwarded is None


def test_an_attached_forward_with_an_ambiguous_from_keeps_no_address():
    raw = (
        b"From: a@alpha.example\nSubject: Fwd: x\n"
        b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\nSee attached.\n\n--b\n'
        b"Content-Type: message/rfc822\n\n"
        b"From: alice@evil.example)<bob@customer.example>\nSubject: x\n\nhi\n--b--\n"
    )
    assert parse_message(raw).forwarded.sender.email == ""


def test_the_fixtures_are_well_formed_mail():
    for name in EXPECTED:
        message = BytesParser(policy=policy.default).parsebytes((FORWARDS / name).read_bytes())
        assert message["From"] and message["Subject"], name


@pytest.mark.parametrize(
    "text",
    [
        "čtvrtek 7. března 2024 10:15",
        "torsdag den 7. marts 2024 10.15",
        "torstai 7. maaliskuuta 2024 10.15",
        "2024. március 7., csütörtök 10:15",
        "giovedì 7 marzo 2024 10:15",
        "donderdag 7 maart 2024 10:15",
        "torsdag 7. mars 2024 10:15",
        "czwartek, 7 marca 2024 10:15",
        "quinta-feira, 7 de março de 2024 10:15",
        "joi, 7 martie 2024 10:15",
        "четверг, 7 марта 2024 г. 10:15",
        "štvrtok 7. marca 2024 10:15",
        "7 Mart 2024 Perşembe 10:15",
        "четвер, 7 березня 2024 р. 10:15",
        "7.3.2024 kello 10.15",
    ],
)
def test_forward_dates_are_read_in_the_other_languages(text):
    assert parse_forward_date(text, default_tz=CET) == datetime(2024, 3, 7, 10, 15, tzinfo=CET)


def test_the_new_outlook_date_of_a_czech_forward_is_the_originals():
    assert forward_of("new_outlook_cs.eml").date == datetime(2024, 3, 7, 10, 15, tzinfo=CET)
