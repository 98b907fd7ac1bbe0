"""SMTP smuggling: a bare-LF or bare-CR end of data never splits one DATA into two messages (B4)."""

import smtplib

import pytest

from channels_conn.models import InboundMessage

FAKE_ENDINGS = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\r", b"\r.\r\n", b"\r\n.\n"]


def smuggle(server, address: str, fake_ending: bytes) -> list[int]:
    """Send one DATA hiding a second transaction behind `fake_ending`; return every reply code after 354."""
    with smtplib.SMTP(server.hostname, server.port, timeout=10) as client:
        client.ehlo("client.example")
        client.mail("dana@customer.example")
        client.rcpt(address)
        assert client.putcmd("DATA") is None and client.getreply()[0] == 354
        client.send(
            b"From: dana@customer.example\r\nSubject: first\r\n\r\nfirst"
            + fake_ending
            + b"MAIL FROM:<admin@customer.example>\r\n"
            + f"RCPT TO:<{address}>\r\n".encode()
            + b"DATA\r\nFrom: admin@customer.example\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\n"
        )
        codes = [client.getreply()[0]]
        client.putcmd("QUIT")
        while codes[-1] != 221:
            codes.append(client.getreply()[0])
    return codes


@pytest.mark.parametrize("fake_ending", FAKE_ENDINGS, ids=repr)
def test_a_fake_end_of_data_never_yields_a_second_message(smtp_server, fallback_address, fake_ending):
    codes = smuggle(smtp_server, fallback_address.address, fake_ending)
    assert codes == [250, 221]
    inbound = InboundMessage.objects.get()
    assert b"MAIL FROM:<admin@customer.example>" in bytes(inbound.raw)
