"""Message size limits at the real ingress: SIZE= at MAIL and the data itself (G1, L4)."""

import smtplib

from channels_conn.models import InboundMessage

HEADER = b"From: dana@customer.example\r\nSubject: Big\r\n\r\n"


def message_of(size: int) -> bytes:
    """A message of exactly `size` octets with CRLF lines of 1000 octets."""
    body_size = size - len(HEADER)
    line = b"a" * 998 + b"\r\n"
    whole, rest = divmod(body_size, len(line))
    if rest == 1:  # no line holds one octet: make the last one 1001 octets instead
        whole, rest = whole - 1, rest + len(line)
    tail = b"b" * (rest - 2) + b"\r\n" if rest else b""
    return HEADER + line * whole + tail


def send_data(server, address: str, message: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP(server.hostname, server.port, timeout=30) as client:
        client.ehlo("client.example")
        client.mail("dana@customer.example")
        client.rcpt(address)
        return client.data(message)


def test_a_message_at_the_limit_is_accepted(start_smtp, fallback_address):
    server = start_smtp(data_size_limit=10_000)
    code, _ = send_data(server, fallback_address.address, message_of(10_000))
    assert code == 250
    assert InboundMessage.objects.get().size == 10_000


def test_one_octet_over_the_limit_gets_552_5_3_4_and_no_row(start_smtp, fallback_address):
    server = start_smtp(data_size_limit=10_000)
    code, reply = send_data(server, fallback_address.address, message_of(10_001))
    assert code == 552 and reply.startswith(b"5.3.4 ")
    assert not InboundMessage.objects.exists()


def test_a_declared_size_over_the_limit_gets_552_5_3_4_at_mail(start_smtp, fallback_address):
    server = start_smtp(data_size_limit=10_000)
    with smtplib.SMTP(server.hostname, server.port, timeout=10) as client:
        client.ehlo("client.example")
        code, reply = client.mail("dana@customer.example", options=["SIZE=10001"])
    assert code == 552 and reply.startswith(b"5.3.4 ")


def test_a_declared_size_at_the_limit_is_accepted_at_mail(start_smtp, fallback_address):
    server = start_smtp(data_size_limit=10_000)
    with smtplib.SMTP(server.hostname, server.port, timeout=10) as client:
        client.ehlo("client.example")
        assert client.mail("dana@customer.example", options=["SIZE=10000"])[0] == 250


def test_the_session_goes_on_after_a_too_big_message(start_smtp, fallback_address):
    server = start_smtp(data_size_limit=10_000)
    with smtplib.SMTP(server.hostname, server.port, timeout=10) as client:
        client.ehlo("client.example")
        client.mail("dana@customer.example")
        client.rcpt(fallback_address.address)
        assert client.data(message_of(10_001))[0] == 552
        sent = client.sendmail("dana@customer.example", [fallback_address.address], message_of(500))
    assert sent == {}
    assert InboundMessage.objects.get().size == 500


def test_the_real_25_mb_limit_refuses_one_octet_more(smtp_server, fallback_address, settings):
    code, reply = send_data(smtp_server, fallback_address.address, message_of(settings.MAX_MESSAGE_BYTES + 1))
    assert code == 552 and reply.startswith(b"5.3.4 ")
    assert not InboundMessage.objects.exists()
