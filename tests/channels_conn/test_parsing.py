"""Reading raw messages (G3, B1, B2, B5, B7, CVE-2023-27043): never raises, says what it could not read."""

import json
from pathlib import Path

import pytest

from inboxhub.lib.mail.parsing import MAX_FILENAME_LENGTH, clean_filename, html_to_text, parse_message
from tests.corpora import CORPORA

SAMPLES = Path(__file__).parent / "samples"


def parse_sample(path: str):
    return parse_message((SAMPLES / path).read_bytes())


def mail(headers: str, body: str = "Hi\n") -> bytes:
    return f"{headers.strip()}\n\n{body}".encode()


def test_the_message_id_is_kept_without_angle_brackets():
    assert parse_message(mail("Message-ID: <abc.123@kund.example>")).message_id == "abc.123@kund.example"


def test_a_missing_message_id_is_empty():
    assert parse_sample("hostile/html_only_no_message_id.eml").message_id == ""


def test_in_reply_to_and_references_are_lists_of_ids_without_brackets():
    parsed = parse_sample("other/reply_gmail_on_wrote.eml")
    assert parsed.in_reply_to == ["outbound-1@alpha.inboxhub.example"]
    assert parsed.references == ["original-4711@kund.example", "outbound-1@alpha.inboxhub.example"]


def test_the_sender_comes_from_from_and_never_from_reply_to():
    parsed = parse_message(mail("From: Ingrid <ingrid@kund.example>\nReply-To: Eve <eve@evil.example>"))
    assert parsed.sender.email == "ingrid@kund.example"
    assert [a.email for a in parsed.reply_to] == ["eve@evil.example"]


def test_emails_are_lower_cased():
    parsed = parse_message(mail("From: Ingrid <Ingrid@Kund.EXAMPLE>\nCc: PER@kund.example"))
    assert (parsed.sender.email, parsed.cc[0].email) == ("ingrid@kund.example", "per@kund.example")


def test_an_address_in_the_display_name_does_not_become_the_sender():
    sender = parse_sample("hostile/from_quoted_address_display_name.eml").sender
    assert (sender.name, sender.email) == ("bob@customer.com", "x@evil.example")


def test_a_parenthesis_confused_from_has_no_email_and_a_defect():
    parsed = parse_sample("hostile/from_parenthesis_confusion.eml")
    assert parsed.sender.email == ""
    assert any("could not be read unambiguously" in defect for defect in parsed.defects)


@pytest.mark.parametrize(
    "from_header",
    [
        "alice@evil.example)<bob@customer.com>",
        "alice@evil.example <bob@customer.com>",
        "alice@evil.example(<bob@customer.com>",
        "<alice@evil.example> <bob@customer.com>",
        "alice@evil.example, bob@customer.com",
        'alice@evil.example"<bob@customer.com>',
    ],
)
def test_confusing_from_headers_never_resolve_to_the_hidden_address(from_header):
    assert parse_message(mail(f"From: {from_header}")).sender.email != "bob@customer.com"


def test_raw_utf8_headers_are_decoded():
    parsed = parse_sample("hostile/headers_8bit_utf8.eml")
    assert (parsed.subject, parsed.sender.name) == ("Räkning för mars", "x Björn Åström")


def test_raw_latin1_headers_are_decoded_with_a_defect():
    parsed = parse_sample("hostile/headers_8bit_latin1.eml")
    assert (parsed.subject, parsed.sender.name) == ("Problème de facture", "François Müller")
    assert any("Windows-1252" in defect for defect in parsed.defects)


def test_encoded_word_subjects_are_decoded():
    assert parse_message(mail("Subject: =?utf-8?q?Caf=C3=A9?=")).subject == "Café"


def test_the_date_is_timezone_aware():
    assert (
        parse_message(mail("Date: Mon, 04 Mar 2024 10:15:00 +0100")).date.utcoffset().total_seconds() == 3600
    )


def test_an_unreadable_date_is_none_with_a_defect():
    parsed = parse_message(mail("Date: the day after tomorrow"))
    assert parsed.date is None and "Date header unreadable" in parsed.defects


def test_the_text_body_comes_from_the_text_part():
    parsed = parse_sample("forwards/gmail_en.eml")
    assert parsed.text.startswith("Hi team") and "<div" not in parsed.text


def test_the_html_body_is_kept_raw_for_the_sanitizer():
    assert 'class="gmail_quote' in parse_sample("forwards/gmail_en.eml").html


def test_an_html_only_message_gets_a_text_rendering_without_script_or_style():
    parsed = parse_sample("hostile/html_only_no_message_id.eml")
    assert parsed.text == "Hello team,\n\nInvoice 4711 is attached.\n\nRegards,\nIngrid"


def test_text_declared_utf8_but_in_latin1_is_read_with_a_defect():
    parsed = parse_sample("hostile/latin1_declared_utf8.eml")
    assert parsed.text.strip() == "Résumé attached, à bientôt."
    assert any("Windows-1252" in defect for defect in parsed.defects)


def test_an_unknown_charset_is_read_as_utf8_with_a_defect():
    parsed = parse_sample("hostile/unknown_charset.eml")
    assert parsed.text.strip() == "Café ordered twice."
    assert "unknown charset 'x-klingon-7'" in parsed.defects


def test_bad_base64_keeps_what_decodes_and_records_it():
    parsed = parse_sample("hostile/bad_base64.eml")
    assert parsed.text.startswith("Hello world")
    assert "InvalidBase64CharactersDefect" in parsed.defects


def test_a_missing_closing_boundary_keeps_text_and_attachment():
    parsed = parse_sample("hostile/missing_close_boundary.eml")
    assert parsed.text.startswith("The text survives")
    assert [a.filename for a in parsed.attachments] == ["invoice.pdf"]
    assert "CloseBoundaryNotFoundDefect" in parsed.defects


def test_a_multipart_without_boundary_is_read_as_text():
    parsed = parse_sample("hostile/multipart_without_boundary.eml")
    assert parsed.text.startswith("Plain words")
    assert "NoBoundaryInMultipartDefect" in parsed.defects


def test_a_header_only_message_has_an_empty_body():
    parsed = parse_sample("hostile/header_only.eml")
    assert (parsed.subject, parsed.text, parsed.html) == ("Only headers here", "", "")


@pytest.mark.parametrize(
    "raw", [b"", b"\x00\xff\xfe", b"From:\n\n", b"Content-Type: multipart/mixed; boundary=\n\n--\n"]
)
def test_garbage_parses_without_raising(raw):
    assert parse_message(raw).sender.email == ""


HOSTILE_NAMES = [
    ("logo.png", "image/png"),
    ("passwd", "text/plain"),
    ("x.bat", "application/octet-stream"),
    ("shadow", "application/octet-stream"),
    (".htaccess", "application/octet-stream"),
    ("Résumé 2024.pdf", "application/pdf"),
    ("Offertändring vår 2024.pdf", "application/pdf"),
    ('"><svg onload=alert(1)>.svg', "image/svg+xml"),
    ("fullwidth.txt", "text/plain"),
    ("attachment", "application/octet-stream"),
]


@pytest.mark.parametrize(("index", "expected"), enumerate(HOSTILE_NAMES))
def test_attachment_names_are_cleaned_and_content_types_kept(index, expected):
    attachment = parse_sample("hostile/hostile_filenames.eml").attachments[index]
    assert (attachment.filename, attachment.content_type) == expected


def test_a_long_attachment_name_is_capped_keeping_its_extension():
    name = parse_sample("hostile/hostile_filenames.eml").attachments[-1].filename
    assert len(name) == MAX_FILENAME_LENGTH and name.endswith("A.pdf")


def test_an_inline_part_with_content_id_is_noted():
    logo = parse_sample("hostile/hostile_filenames.eml").attachments[0]
    assert (logo.inline, logo.content_id, logo.payload[:4]) == (True, "logo@kund.example", b"\x89PNG")


def test_a_format_character_is_stripped_before_the_name_is_checked():
    assert clean_filename("report\u200b.pdf\u202e") == "report.pdf"


@pytest.mark.parametrize("name", ["", "..", "../..", "/", "\u200b", "C:\\"])
def test_a_name_with_nothing_left_becomes_attachment(name):
    assert clean_filename(name) == "attachment"


def test_ten_thousand_tiny_parts_are_capped_at_a_thousand():
    parts = b"".join(b"--x\nContent-Type: text/plain\n\np%d\n" % i for i in range(10_000))
    raw = b'From: a@kund.example\nContent-Type: multipart/mixed; boundary="x"\n\n' + parts + b"--x--\n"
    parsed = parse_message(raw)
    assert "more than 1000 parts; the rest was not read" in parsed.defects


def test_thousand_deep_nesting_is_capped_at_fifty_levels():
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(1000)
    )
    closing = b"".join(b"--b%d--\n" % i for i in reversed(range(1000)))
    raw = b"From: a@kund.example\n" + opening + b"Content-Type: text/plain\n\nhello\n" + closing
    parsed = parse_message(raw)
    assert any("nested deeper than 50 levels" in defect for defect in parsed.defects)


def test_thousand_nested_attached_messages_are_capped_at_fifty_levels():
    raw = (
        b"".join(b"From: a@kund.example\nContent-Type: message/rfc822\n\n" for _ in range(1000))
        + b"\nhello\n"
    )
    parsed = parse_message(raw)
    assert any("nested deeper than 50 levels" in defect for defect in parsed.defects)


# --- the shared corpora, when this checkout sits beside them ---


def corpus(folder: str) -> Path:
    path = CORPORA / folder
    if not path.is_dir():
        pytest.skip(f"{path} is absent: the shared corpora are not beside this checkout")
    return path


def corpus_files() -> list[str]:
    folders = ("cpython-email", "django-helpdesk", "talon")
    return sorted(
        str(path.relative_to(CORPORA))
        for folder in folders
        if (CORPORA / folder).is_dir()
        for path in (CORPORA / folder).rglob("*")
        if path.suffix in (".txt", ".eml", ".html") and path.name != "README.md"
    ) or ["absent"]


@pytest.mark.parametrize("name", corpus_files())
def test_every_corpus_file_parses_without_raising(name):
    corpus("cpython-email")
    parsed = parse_message((CORPORA / name).read_bytes())
    assert isinstance(parsed.defects, list)


def defect_cases() -> list[dict]:
    path = CORPORA / "cpython-email" / "defect_cases.json"
    return json.loads(path.read_text()) if path.exists() else [{"id": "absent"}]


@pytest.mark.parametrize("case", defect_cases(), ids=lambda case: case["id"])
def test_cpython_defect_cases_parse_and_report_the_expected_defect(case):
    corpus("cpython-email")
    parsed = parse_message(case["source"].encode("utf-8", "surrogateescape"))
    expected = case.get("defects_at_parse") or case.get("defects_on_decode")
    if expected:
        assert any(expected in defect for defect in parsed.defects)
    else:
        assert not [d for d in parsed.defects if d.endswith("Defect")]


def test_cpython_bad_base64_keeps_the_recoverable_bytes():
    cases = {
        case["id"]: case for case in json.loads((corpus("cpython-email") / "defect_cases.json").read_text())
    }
    case = cases["test_invalid_length_of_base64_payload"]
    assert parse_message(case["source"].encode()).text.startswith(case["decoded_payload"])


def helpdesk_cases() -> list[dict]:
    path = CORPORA / "django-helpdesk" / "cases.json"
    return json.loads(path.read_text()) if path.exists() else [{"file": "absent"}]


@pytest.mark.parametrize("case", [c for c in helpdesk_cases() if "title" in c], ids=lambda case: case["file"])
def test_django_helpdesk_subjects_are_decoded(case):
    parsed = parse_message((corpus("django-helpdesk") / case["file"]).read_bytes())
    assert parsed.subject == case["title"]


def test_talon_replies_are_never_taken_for_forwards():
    replies = sorted((corpus("talon") / "standard_replies").glob("*.eml"))
    assert [path.name for path in replies if parse_message(path.read_bytes()).forwarded] == []


@pytest.mark.parametrize(
    "case",
    [c for c in helpdesk_cases() if "description" in c or "description_contains" in c],
    ids=lambda case: case["file"],
)
def test_django_helpdesk_body_text_is_read(case):
    parsed = parse_message((corpus("django-helpdesk") / case["file"]).read_bytes())
    # utf-nondecodable.eml says it only in its HTML part, which differs from its text part.
    readable = parsed.text + "\n" + html_to_text(parsed.html)
    for expected in case.get("description_contains", [case.get("description", "")]):
        assert " ".join(expected.split()) in " ".join(readable.split())


def test_django_helpdesk_blank_body_keeps_its_attachment():
    parsed = parse_message((corpus("django-helpdesk") / "blank-body-with-attachment.eml").read_bytes())
    assert parsed.text.strip() == "" and len(parsed.attachments) == 1


# --- the text of an HTML-only message ---


def test_html_to_text_breaks_lines_at_blocks_and_drops_scripts_and_styles():
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<p>Hello&nbsp;<b>Carol</b>,</p><div>Your order &lt;42&gt; shipped.<br>Thanks</div>"
        "<table><tr><td>Item</td><td>Qty</td></tr></table><script>alert(1)</script><!-- note -->"
        "</body></html>"
    )
    assert html_to_text(html) == "Hello Carol,\n\nYour order <42> shipped.\nThanks\n\nItem Qty"


@pytest.mark.parametrize(
    "html", ['<a b="' * 50_000, "<!--" * 50_000, "<a" * 50_000, "<![CDATA[" * 50_000], ids=range(4)
)
def test_html_to_text_reads_unclosed_markup_that_held_the_standard_parser_for_minutes(html):
    assert html_to_text("Hello " + html).startswith("Hello")
