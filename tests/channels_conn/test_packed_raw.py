"""What the spool keeps of processed mail: compacted and deflated (issue 18 point 4), back byte for byte."""

import random
import zlib
from email import policy
from email.message import EmailMessage

import pytest

from inboxhub.lib.mail.compact_raw import (
    PACKED_PREFIX,
    PREFIX,
    RestoreError,
    compact,
    is_packed,
    pack,
    unpack,
)
from tests.channels_conn.test_compact_raw import (
    PDF,
    Loads,
    base64_payloads,
    corpus_mails,
    nothing_stored,
    sha,
    with_attachment,
)


def text_with_attachment(text: str) -> bytes:
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = "Ingrid <ingrid@kund.example>"
    mail["Subject"] = "The printer"
    mail.set_content(text + "\n")
    mail.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    return bytes(mail)


def packed_round_trip(raw: bytes, payloads: dict[str, bytes]) -> bytes:
    packed = pack(raw, payloads.__contains__)
    if packed is not raw:
        assert unpack(packed, Loads(payloads)) == raw
    return packed


@pytest.mark.parametrize("raw", corpus_mails())
def test_every_sample_and_corpus_mail_comes_back_byte_for_byte(raw):
    packed_round_trip(raw, base64_payloads(raw))
    packed_round_trip(raw, {})


def test_a_text_mail_is_kept_in_well_under_half_its_bytes():
    raw = text_with_attachment("Hello, the printer in the second floor office is broken again. " * 20)

    packed = packed_round_trip(raw, {sha(PDF): PDF})

    assert is_packed(packed)
    assert len(packed) < (len(raw) - len(PDF)) // 2


def test_mail_that_deflating_would_not_shrink_is_kept_as_received():
    raw = b"From: a@b.example\r\n\r\n" + random.Random(3).randbytes(4_000)
    assert pack(raw, nothing_stored) is raw


def test_mail_beginning_like_packed_or_compacted_data_comes_back_unchanged():
    for marker in (PACKED_PREFIX, PREFIX):
        raw = marker + b"From: a@b.example\r\n\r\n" + b"Hello again and again. " * 40
        packed = pack(raw, lambda sha256: True)
        assert packed != raw
        assert unpack(packed, Loads({})) == raw


def test_data_compacted_before_packing_existed_still_comes_back():
    raw = bytes(with_attachment(PDF))
    compacted = compact(raw, {sha(PDF)}.__contains__)
    assert unpack(compacted, Loads({sha(PDF): PDF})) == raw


def test_a_packed_mail_needs_its_attachment_and_checks_it():
    raw = bytes(with_attachment(PDF))
    packed = pack(raw, {sha(PDF)}.__contains__)
    with pytest.raises(RestoreError, match="has changed"):
        unpack(packed, {sha(PDF): PDF[:-1] + b"!"}.__getitem__)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:-1], id="truncated"),
        pytest.param(lambda data: data + b"\0", id="followed by more"),
        pytest.param(lambda data: data[:-6] + bytes([data[-6] ^ 1]) + data[-5:], id="a byte changed"),
        pytest.param(
            lambda data: PACKED_PREFIX + zlib.compress(b"From: someone@else.example\r\n\r\nOther bytes"),
            id="deflated without the dictionary",
        ),
    ],
)
def test_damaged_packed_mail_raises_and_never_gives_other_bytes(damage):
    raw = text_with_attachment("See the attachment, and the long explanation. " * 30)
    packed = pack(raw, {sha(PDF)}.__contains__)
    with pytest.raises(RestoreError):
        unpack(damage(packed), {sha(PDF): PDF}.__getitem__)
