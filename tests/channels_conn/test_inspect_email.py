"""`manage.py inspect_email` (G7): one JSON object with exactly the promised keys."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

SAMPLES = Path(__file__).parent / "samples"
KEYS = {"is_forwarded", "original_sender", "subject", "cc", "text", "forwarded_by"}


def inspect_file(path: Path) -> dict:
    out = io.StringIO()
    call_command("inspect_email", str(path), stdout=out)
    return json.loads(out.getvalue())


def test_it_prints_exactly_the_promised_keys():
    assert set(inspect_file(SAMPLES / "forwards" / "outlook_de.eml")) == KEYS | {"authentication"}


def test_it_reports_a_forward_with_the_original_sender_subject_and_ccs():
    result = inspect_file(SAMPLES / "forwards" / "outlook_de.eml")
    assert result["is_forwarded"] is True
    assert result["original_sender"] == {"name": "Ingrid Svensson", "email": "ingrid.svensson@kund.example"}
    assert result["subject"] == "Rechnung 4711 noch offen"
    assert result["cc"] == ["per.holm@kund.example", "ekonomi@kund.example"]


def test_it_names_the_forwarder():
    assert inspect_file(SAMPLES / "forwards" / "yahoo_fr.eml")["forwarded_by"] == "alice@alpha.example"


def test_its_text_has_no_forward_header_block():
    text = inspect_file(SAMPLES / "forwards" / "thunderbird_sv.eml")["text"]
    assert "Vidarebefordrat meddelande" not in text and "Från:" not in text
    assert text.startswith("Hej! Kan någon ta den här?") and "Vår faktura 4711" in text


def test_a_plain_message_is_not_forwarded_and_keeps_its_own_subject_and_cc():
    raw = b"From: Per <per@kund.example>\nCc: Eva <Eva@kund.example>\nSubject: Hello\n\nJust a question.\n"
    out = io.StringIO()
    call_command("inspect_email", "-", stdin=io.BytesIO(raw), stdout=out)
    result = json.loads(out.getvalue())
    assert result.pop("authentication")["authenticated"] is False  # unsigned (G8)
    assert result == {
        "is_forwarded": False,
        "original_sender": None,
        "subject": "Hello",
        "cc": ["eva@kund.example"],
        "text": "Just a question.\n",
        "forwarded_by": None,
    }


def test_it_reads_a_forward_from_stdin():
    out = io.StringIO()
    raw = (SAMPLES / "other" / "rfc822_forward.eml").read_bytes()
    call_command("inspect_email", "-", stdin=io.BytesIO(raw), stdout=out)
    assert json.loads(out.getvalue())["original_sender"]["email"] == "ingrid.svensson@kund.example"


def test_a_missing_file_is_a_clear_command_error():
    with pytest.raises(CommandError, match="Cannot read /nonexistent/mail.eml: No such file or directory"):
        call_command("inspect_email", "/nonexistent/mail.eml")


def inspect_many(*paths: Path) -> list[dict]:
    out = io.StringIO()
    call_command("inspect_email", *map(str, paths), stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_several_files_print_one_json_object_a_line_each_with_its_file():
    first, second = SAMPLES / "forwards" / "outlook_de.eml", SAMPLES / "other" / "reply_outlook_re.eml"
    lines = inspect_many(first, second)
    assert [(line["file"], line["is_forwarded"]) for line in lines] == [
        (str(first), True),
        (str(second), False),
    ]
    assert lines[0]["original_sender"]["email"] == "ingrid.svensson@kund.example"


def test_a_directory_prints_a_line_for_each_of_its_messages_in_name_order_and_skips_its_json():
    folder = SAMPLES / "forwards"
    lines = inspect_many(folder)
    assert [line["file"] for line in lines] == sorted(str(p) for p in folder.glob("*.eml"))
    assert all(line["is_forwarded"] for line in lines)


def test_an_unreadable_file_among_several_gives_its_error_line_and_the_others_are_read(tmp_path):
    lines = inspect_many(tmp_path / "missing.eml", SAMPLES / "forwards" / "gmail_en.eml")
    assert lines[0] == {"file": str(tmp_path / "missing.eml"), "error": lines[0]["error"]}
    assert "Cannot read" in lines[0]["error"] and lines[1]["is_forwarded"] is True


def test_one_file_still_prints_one_indented_object():
    out = io.StringIO()
    call_command("inspect_email", str(SAMPLES / "forwards" / "gmail_en.eml"), stdout=out)
    assert out.getvalue().startswith('{\n  "is_forwarded": true')
