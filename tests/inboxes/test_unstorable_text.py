"""A NUL byte or an undecodable byte never loses a mail (issue 16, point 4).

PostgreSQL text and JSON columns hold neither NUL nor a lone surrogate (what Python's decoders
leave of bytes they could not read). Each test puts one of them in one header or part of a
mail, spools it as the ingress does and runs the real pipeline on PostgreSQL: the message is
stored, readable, and its raw bytes stay in the spool as they came.
"""

import socket

import pytest
from django.db import connection
from django_scopes import scope

from channels_conn.models import InboundMessage
from inboxhub.celery import app as celery_app
from ingest.pipeline import process_inbound_message
from tests.channels_conn.conftest import start_smtp  # noqa: F401 - the fixture
from tests.inboxes.helpers import address_of, messages_in, spool

# One mail with every kind of header and part the pipeline stores: text, HTML, an attachment, a
# forwarded message. Each slot holds a plain value; a test replaces one. A "\udcXX" in a value
# stands for the raw byte 0xXX (written with surrogateescape).
TEMPLATE = """\
From: {from_name} <carol@customer.example>
To: {to_name} <{to}>
Cc: {cc_name} <dave@customer.example>
Reply-To: {reply_name} <carol@customer.example>
Subject: {subject}
Date: {date}
Message-ID: <{message_id}@customer.example>
In-Reply-To: <{in_reply_to}@customer.example>
References: <{references}@customer.example>
X-Mailer: {x_mailer}
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: multipart/alternative; boundary="b2"

--b2
Content-Type: text/plain; charset="{charset}"
Content-Transfer-Encoding: {text_encoding}

{text}
--b2
Content-Type: text/html; charset=utf-8

<p>{html}</p>
--b2--
--b1
Content-Type: application/pdf; name="{filename}"
Content-Disposition: attachment; filename="{filename}"
Content-ID: <{content_id}@customer.example>
Content-Transfer-Encoding: base64

JVBERi0xLjQ=
--b1
Content-Type: message/rfc822
Content-Disposition: attachment

From: {inner_from_name} <erin@elsewhere.example>
Subject: {inner_subject}
Content-Type: text/plain; charset=utf-8

{inner_text}
--b1--
"""

PLAIN = {
    "from_name": "Carol Customer",
    "to_name": "Support",
    "cc_name": "Dave",
    "reply_name": "Carol",
    "subject": "Where is my order",
    "date": "Fri, 20 Nov 2026 09:30:00 +0000",
    "message_id": "order-1",
    "in_reply_to": "earlier-1",
    "references": "earlier-0",
    "x_mailer": "Mailer 1.0",
    "charset": "utf-8",
    "text_encoding": "8bit",
    "text": "Hello, my order has not arrived.",
    "html": "Hello, my order has not arrived.",
    "filename": "invoice.pdf",
    "content_id": "part-1",
    "inner_from_name": "Erin Elsewhere",
    "inner_subject": "Broken widget",
    "inner_text": "My widget is broken.",
}


def raw_mail(to: str, **slots: str) -> bytes:
    text = TEMPLATE.format(to=to, **(PLAIN | slots)).replace("\n", "\r\n")
    return text.encode("utf-8", "surrogateescape")


def process(inbox, raw: bytes):
    """Spool the raw mail as the ingress does and run the pipeline; the stored message."""
    row = spool(raw, address_of(inbox))
    assert process_inbound_message(row.pk) == InboundMessage.State.PROCESSED, row_error(row)
    row.refresh_from_db()
    assert bytes(row.raw) == raw  # the spool keeps the mail byte for byte
    [message] = messages_in(inbox.account)
    return message


def row_error(row: InboundMessage) -> str:
    row.refresh_from_db()
    return row.error


def attachment_names(message) -> list[str]:
    with scope(account=message.account):
        return sorted(a.filename for a in message.attachments.all())


NUL = "\x00"


@pytest.mark.parametrize(
    "slot",
    [
        "from_name",
        "to_name",
        "cc_name",
        "reply_name",
        "subject",
        "date",
        "message_id",
        "in_reply_to",
        "references",
        "x_mailer",
        "charset",
        "text",
        "html",
        "filename",
        "content_id",
        "inner_from_name",
        "inner_subject",
        "inner_text",
    ],
)
def test_a_nul_in_any_header_or_part_still_stores_the_message(inbox, slot):
    message = process(inbox, raw_mail(address_of(inbox), **{slot: PLAIN[slot][:3] + NUL + PLAIN[slot][3:]}))

    assert message.from_email == "carol@customer.example"
    assert "my order has not arrived" in message.text


def test_a_nul_in_the_subject_shows_as_a_replacement_character(inbox):
    message = process(inbox, raw_mail(address_of(inbox), subject="Where is\x00my order"))

    assert message.subject == message.conversation.subject == "Where is\ufffdmy order"


def test_a_nul_in_the_text_body_shows_as_a_replacement_character(inbox):
    message = process(inbox, raw_mail(address_of(inbox), text="Hello,\x00 my order has not arrived."))

    assert message.text.startswith("Hello,\ufffd my order has not arrived.")


def test_a_nul_encoded_in_quoted_printable_text_is_stored_too(inbox):
    message = process(
        inbox,
        raw_mail(
            address_of(inbox), text_encoding="quoted-printable", text="Hello,=00 my order has not arrived."
        ),
    )

    assert message.text.startswith("Hello,\ufffd my order has not arrived.")


def test_a_nul_in_the_from_name_keeps_the_sender_and_the_contact(inbox):
    message = process(inbox, raw_mail(address_of(inbox), from_name="Carol\x00 Customer"))

    assert message.from_name == "Carol\ufffd Customer"
    assert message.conversation.contact.email == "carol@customer.example"


def test_a_nul_in_a_filename_keeps_the_attachment(inbox):
    message = process(inbox, raw_mail(address_of(inbox), filename="inv\x00oice.pdf"))

    assert "invoice.pdf" in attachment_names(message)


@pytest.mark.parametrize("slot", ["from_name", "to_name", "cc_name", "inner_from_name"])
def test_an_encoded_word_of_an_unknown_charset_in_a_name_still_stores_the_message(inbox, slot):
    message = process(inbox, raw_mail(address_of(inbox), **{slot: "=?x-nope?Q?Ad=E9?="}))

    assert message.from_email == "carol@customer.example"


def test_an_unknown_charset_in_the_from_name_is_read_as_windows_1252(inbox):
    message = process(inbox, raw_mail(address_of(inbox), from_name="=?x-nope?Q?Ad=E9?="))

    assert message.from_name == "Adé"
    assert message.conversation.contact.name == "Adé"


def test_an_unknown_charset_in_a_cc_name_is_read_as_windows_1252(inbox):
    message = process(inbox, raw_mail(address_of(inbox), cc_name="=?x-nope?Q?Ad=E9?="))

    assert message.cc == [{"name": "Adé", "email": "dave@customer.example"}]


@pytest.mark.parametrize(
    ("slot", "value"),
    [
        ("subject", "=?x-nope?Q?caf=E9?="),
        ("subject", "caf\udce9 \udcff\udcfe"),  # raw Latin-1 and invalid bytes, no encoded word
        ("from_name", "Ad\udce9 \udc81"),
        ("filename", "=?x-nope?Q?f=E9.pdf?="),
        ("inner_subject", "=?x-nope?Q?caf=E9?="),
        ("inner_text", "caf\udce9"),
        ("text", "caf\udce9 \udcc3"),
        ("x_mailer", "=?x-nope?B?/w==?="),
    ],
    ids=ascii,  # xdist sends test ids as UTF-8: a lone surrogate in one would stop the run
)
def test_undecodable_bytes_in_a_header_or_part_still_store_the_message(inbox, slot, value):
    message = process(inbox, raw_mail(address_of(inbox), **{slot: value}))

    assert message.from_email == "carol@customer.example"


@pytest.mark.parametrize(
    "signature",
    [
        "v=1; a=rsa-sha256; d=custo\x00mer.example; s=se\x00l; h=from; bh=AAAA; b=AAAA",
        "v=1; a=rsa-sha256; d=caf\udce9.example; s=sel; h=from; bh=AAAA; b=AAAA",
    ],
    ids=["nul", "raw-byte"],
)
def test_a_nul_or_a_raw_byte_in_a_dkim_signature_still_stores_the_message(inbox, signature):
    """The sender authentication quotes the signature's domain in the verdict stored with the message."""
    raw = f"DKIM-Signature: {signature}\r\n".encode("utf-8", "surrogateescape") + raw_mail(address_of(inbox))

    message = process(inbox, raw)

    assert message.auth_verdict == "not_verified"


def test_the_failed_reason_itself_is_storable_when_an_error_quotes_a_nul(inbox, monkeypatch):
    """A failure whose message quotes the mail is still recorded, so the row is never stuck."""

    def broken(*args, **kwargs):
        raise ValueError("cannot read Carol\x00 \udce9")

    monkeypatch.setattr("ingest.pipeline.receive_message", broken)
    row = spool(raw_mail(address_of(inbox)), address_of(inbox))

    assert process_inbound_message(row.pk) == InboundMessage.State.RECEIVED  # retried later
    row.refresh_from_db()
    assert row.error == "ValueError: cannot read Carol\ufffd é"


def test_the_database_is_postgresql():
    # The point of these tests: SQLite stores NUL and would pass them all on today's code.
    assert connection.vendor == "postgresql"


def smtp_session(port: int, commands: list[bytes]) -> list[bytes]:
    """Talk SMTP line by line, so that the HELO and MAIL FROM can carry what smtplib would not send."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        replies = client.makefile("rb")
        answers = [replies.readline()]
        for command in commands:
            client.sendall(command + b"\r\n")
            answers.append(replies.readline())
        return answers


def test_a_nul_in_the_helo_and_the_envelope_sender_still_gets_250_and_a_conversation(
    inbox,
    start_smtp,  # noqa: F811 - the fixture imported above
    monkeypatch,
):
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)  # processed before the 250
    server = start_smtp()
    to = address_of(inbox).encode()
    data = raw_mail(address_of(inbox)).replace(b"\r\n.", b"\r\n..") + b"."  # it ends with CRLF

    answers = smtp_session(
        server.port,
        [b"HELO client\x00.example", b"MAIL FROM:<carol\x00@customer.example>", b"RCPT TO:<" + to + b">"]
        + [b"DATA", data, b"QUIT"],
    )

    assert [answer[:3] for answer in answers] == [b"220", b"250", b"250", b"250", b"354", b"250", b"221"]
    [message] = messages_in(inbox.account)
    assert message.from_email == "carol@customer.example"
    assert bytes(message.inbound.raw) == raw_mail(address_of(inbox))
