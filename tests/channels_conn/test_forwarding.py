"""Forwarded-mail detection (G6, C9): inline blocks of six clients in five languages, and rfc822."""

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from inboxhub.lib.mail.forwarding import find_inline_forward, has_forward_prefix, parse_forward_date
from inboxhub.lib.mail.parsing import parse_message

SAMPLES = Path(__file__).parent / "samples"
EXPECTED = json.loads((SAMPLES / "forwards" / "expected.json").read_text(encoding="utf-8"))
FORWARDS = sorted(EXPECTED)


def parse_sample(path: str):
    return parse_message((SAMPLES / path).read_bytes())


def forward_of(name: str):
    return parse_sample(f"forwards/{name}").forwarded


@pytest.mark.parametrize("name", FORWARDS)
def test_each_client_and_language_names_the_client(name):
    assert forward_of(name).client == EXPECTED[name]["client"]


@pytest.mark.parametrize("name", FORWARDS)
def test_each_client_and_language_gives_the_original_sender(name):
    sender = forward_of(name).sender
    assert (sender.name, sender.email) == (EXPECTED[name]["sender_name"], EXPECTED[name]["sender_email"])


@pytest.mark.parametrize("name", FORWARDS)
def test_each_client_and_language_gives_the_original_subject_without_prefix(name):
    assert forward_of(name).subject == EXPECTED[name]["subject"]


@pytest.mark.parametrize("name", FORWARDS)
def test_each_client_and_language_gives_the_original_date(name):
    assert forward_of(name).date == datetime.fromisoformat(EXPECTED[name]["date"])


@pytest.mark.parametrize("name", FORWARDS)
def test_only_the_original_ccs_are_kept_not_the_one_added_while_forwarding(name):
    assert [address.email for address in forward_of(name).cc] == EXPECTED[name]["cc"]


@pytest.mark.parametrize("name", FORWARDS)
def test_the_forward_header_block_is_gone_from_the_text(name):
    text = parse_sample(f"forwards/{name}").text_without_forward_header
    assert EXPECTED[name]["sender_email"] not in text
    assert not EXPECTED[name]["separator"] or EXPECTED[name]["separator"] not in text


@pytest.mark.parametrize("name", FORWARDS)
def test_the_text_keeps_the_forwarders_note_and_the_original_body(name):
    text = parse_sample(f"forwards/{name}").text_without_forward_header
    assert EXPECTED[name]["note"] in text and EXPECTED[name]["body_line"] in text


@pytest.mark.parametrize("name", FORWARDS)
def test_the_original_text_is_the_original_body_alone(name):
    original = forward_of(name)
    assert original.text.startswith(EXPECTED[name]["body_start"])
    assert EXPECTED[name]["note"] not in original.text


@pytest.mark.parametrize(
    "name", [n for n in FORWARDS if EXPECTED[n]["client"] in ("gmail", "thunderbird", "outlook_web")]
)
def test_the_original_html_is_cut_out_below_the_header_for_marked_clients(name):
    html = forward_of(name).html
    assert "4711" in html and EXPECTED[name]["sender_email"] not in html


@pytest.mark.parametrize("name", FORWARDS)
def test_the_outer_message_keeps_the_forwarder_as_sender(name):
    assert parse_sample(f"forwards/{name}").sender.email == EXPECTED[name]["forwarded_by"]


def test_an_attached_rfc822_message_is_read_as_the_original():
    original = parse_sample("other/rfc822_forward.eml").forwarded
    assert original.client == "rfc822"
    assert (original.sender.name, original.sender.email) == (
        "Ingrid Svensson",
        "ingrid.svensson@kund.example",
    )
    assert original.subject == "Invoice 4711 still unpaid"
    assert original.date == datetime(2024, 3, 4, 9, 15, tzinfo=UTC)


def test_an_attached_rfc822_forward_keeps_only_the_original_ccs():
    original = parse_sample("other/rfc822_forward.eml").forwarded
    assert [address.email for address in original.cc] == ["per.holm@kund.example", "ekonomi@kund.example"]


def test_an_attached_rfc822_forward_carries_the_original_html():
    assert "<p>Our invoice 4711" in parse_sample("other/rfc822_forward.eml").forwarded.html


def test_an_attached_rfc822_forward_text_has_the_note_and_the_original_body():
    text = parse_sample("other/rfc822_forward.eml").text_without_forward_header
    assert text.startswith("Forwarding as attachment") and "still unpaid" in text


@pytest.mark.parametrize(
    "name",
    [
        "reply_gmail_on_wrote.eml",
        "reply_quoting_a_forward.eml",
        "reply_outlook_re.eml",
        "reply_to_a_forward_re_fw.eml",
        "reply_outlook_de_aw.eml",
        "reply_outlook_2019_quoted_name.eml",
        "prefix_only_fwd.eml",
    ],
)
def test_replies_and_prefix_only_subjects_are_not_forwards(name):
    parsed = parse_sample(f"other/{name}")
    assert parsed.forwarded is None
    assert parsed.text_without_forward_header == parsed.text


@pytest.mark.parametrize(
    "prefix", ["Fwd:", "Fw:", "FW:", "VS:", "WG:", "TR:", "RV:", "VB:", "RE:", "AW:", "SV:"]
)
def test_a_subject_prefix_alone_is_not_a_forward(prefix):
    raw = f"From: a@alpha.example\nSubject: {prefix} quarterly numbers\n\nNumbers attached.\nFrom: the CFO\n"
    assert parse_message(raw.encode()).forwarded is None


def test_a_gmail_forward_in_italian_is_read_by_the_own_patterns():
    original = parse_sample("other/generic_gmail_it.eml").forwarded
    assert (original.client, original.sender.email, original.subject) == (
        "gmail",
        "ingrid.svensson@kund.example",
        "Fattura 4711 non pagata",
    )


def test_an_outlook_2019_attribution_under_a_forward_prefix_is_read_as_a_forward():
    text = (
        'FYI\n\nOn 04/03/2024 10:15, "Ingrid Svensson" <ingrid.svensson@kund.example> wrote:\n\n'
        "    Our invoice 4711 is still unpaid.\n"
    )
    parsed = parse_message(f"From: a@alpha.example\nSubject: FW: Invoice 4711\n\n{text}".encode())
    assert (parsed.forwarded.client, parsed.forwarded.sender.name, parsed.forwarded.sender.email) == (
        "outlook",
        "Ingrid Svensson",
        "ingrid.svensson@kund.example",
    )


def test_the_same_attribution_under_a_reply_subject_is_a_reply():
    text = 'On 04/03/2024 10:15, "Ingrid Svensson" <ingrid.svensson@kund.example> wrote:\n\n    Unpaid.\n'
    assert parse_message(f"From: a@alpha.example\nSubject: Invoice 4711\n\n{text}".encode()).forwarded is None


def test_the_fallback_library_keeps_only_the_original_ccs():
    assert [a.email for a in parse_sample("other/generic_gmail_it.eml").forwarded.cc] == [
        "per.holm@kund.example"
    ]


def test_outlook_mailto_brackets_and_semicolons_are_read_as_addresses():
    text = (
        "FYI\n\n-----Original Message-----\nFrom: Jane Roe [mailto:Jane.Roe@Kund.example]\n"
        "Sent: Monday, March 4, 2024 10:15 AM\nTo: Support\n"
        "Cc: Per Holm <per@kund.example>; eva@kund.example\n"
        "Subject: Order 12\n\nBody\n"
    )
    parsed = parse_message(f"From: a@alpha.example\nSubject: FW: Order 12\n\n{text}".encode())
    assert parsed.forwarded.sender.email == "jane.roe@kund.example"
    assert [a.email for a in parsed.forwarded.cc] == ["per@kund.example", "eva@kund.example"]


def test_a_forwarded_sender_that_cannot_be_read_unambiguously_has_no_email():
    text = (
        "---------- Forwarded message ---------\n"
        "From: alice@evil.example)<bob@customer.com>\nSubject: x\n\nHi\n"
    )
    parsed = parse_message(f"From: a@alpha.example\nSubject: Fwd: x\n\n{text}".encode())
    assert parsed.forwarded.sender.email == ""
    assert any("could not be read unambiguously" in defect for defect in parsed.defects)


def test_an_inline_forward_is_none_for_plain_text():
    assert find_inline_forward("Hello\n\nFrom: me\nSubject: nothing\n", subject="Hello") is None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [("Fwd: x", True), ("[Ticket #4] FW: x", True), ("WG: x", True), ("RE: FW: x", False), ("Fwd x", False)],
)
def test_forward_prefixes_are_recognised_only_at_the_start(subject, expected):
    assert has_forward_prefix(subject) is expected


CET = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    "text",
    [
        "Mon, Mar 4, 2024 at 10:15 AM",
        "Mo., 4. März 2024 um 10:15 Uhr",
        "den 4 mars 2024 10:15",
        "lun. 4 mars 2024 à 10:15",
        "lunes, 4 de marzo de 2024 10:15",
        "4 March 2024 at 10:15:00 CET",
        "Mon, 4 Mar 2024 10:15:00 +0100",
        "Monday, March 4, 2024 at 10:15:00 AM GMT+1",
        "04.03.2024 10:15",
    ],
)
def test_forward_dates_are_read_in_each_language(text):
    assert parse_forward_date(text, default_tz=CET) == datetime(2024, 3, 4, 10, 15, tzinfo=CET)


def test_a_weekday_abbreviation_is_not_taken_for_the_month():
    assert parse_forward_date("mar. 2 avr. 2024 à 10:15", default_tz=UTC) == datetime(
        2024, 4, 2, 10, 15, tzinfo=UTC
    )


def test_an_unreadable_forward_date_is_none():
    assert parse_forward_date("sometime last week") is None


@pytest.mark.parametrize(
    "body",
    ["From: x\n" * 50_000, "---------- Forwarded message ---------\n" * 20_000, ("_" * 40 + "\n") * 30_000],
)
def test_a_text_of_many_header_like_lines_is_not_taken_for_a_forward(body):
    # Guards against catastrophic backtracking too: pytest-timeout stops a run that hangs.
    parsed = parse_message(f"From: a@alpha.example\nSubject: Fwd: hi\n\n{body}".encode())
    assert parsed.forwarded is None
