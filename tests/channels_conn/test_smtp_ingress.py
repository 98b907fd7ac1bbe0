"""The SMTP ingress over a real socket: recipients, replies, and what the spool row records (G1, G2)."""

import smtplib
import time

import pytest
from django.conf import settings

from channels_conn import recipients
from channels_conn.models import InboundMessage

MESSAGE = (
    b"From: Dana <dana@customer.example>\r\nSubject: Hello\r\n"
    b"Message-ID: <m1@customer.example>\r\n\r\nHi!\r\n"
)


def connect(server, helo: str = "client.example") -> smtplib.SMTP:
    client = smtplib.SMTP(server.hostname, server.port, local_hostname=helo, timeout=10)
    client.ehlo()
    return client


def rcpt_reply(server, address: str) -> tuple[int, bytes]:
    with connect(server) as client:
        client.mail("dana@customer.example")
        return client.rcpt(address)


def test_ehlo_advertises_size_8bitmime_smtputf8_and_pipelining(smtp_server):
    with connect(smtp_server) as client:
        assert client.esmtp_features["size"] == str(settings.MAX_MESSAGE_BYTES)
        assert {"8bitmime", "smtputf8", "pipelining"} <= set(client.esmtp_features)


def test_a_message_to_a_fallback_address_is_committed_before_the_250(smtp_server, fallback_address):
    with connect(smtp_server, helo="mx.customer.example") as client:
        client.mail("dana@customer.example")
        client.rcpt(fallback_address.address)
        code, reply = client.data(MESSAGE)
    inbound = InboundMessage.objects.get()
    assert (code, reply.decode()) == (250, f"2.0.0 Ok: queued as {inbound.pk}")
    assert bytes(inbound.raw) == MESSAGE
    assert inbound.size == len(MESSAGE)
    assert inbound.mail_from == "dana@customer.example"
    assert inbound.rcpt_tos == [fallback_address.address]
    assert inbound.peer_ip == "127.0.0.1"
    assert inbound.helo == "mx.customer.example"


def test_the_recipient_matches_case_insensitively(smtp_server, fallback_address):
    assert rcpt_reply(smtp_server, fallback_address.address.upper()) == (250, b"2.1.5 Ok")


def test_a_plus_token_resolves_to_the_fallback_address_and_is_kept_in_the_envelope(
    smtp_server, fallback_address
):
    local, domain = fallback_address.address.split("@")
    tokened = f"{local}+r-abc123@{domain}"
    with connect(smtp_server) as client:
        sent = client.sendmail("dana@customer.example", [tokened], MESSAGE)
    assert sent == {}
    assert InboundMessage.objects.get().rcpt_tos == [tokened]


def test_a_domain_not_ours_is_refused_as_relaying(smtp_server, fallback_address):
    assert rcpt_reply(smtp_server, "someone@gmail.com") == (550, b"5.7.1 Relay access denied")


def test_the_bare_inbound_domain_and_deeper_subdomains_are_refused_as_relaying(smtp_server, fallback_address):
    local, domain = fallback_address.address.split("@")
    assert rcpt_reply(smtp_server, f"{local}@{settings.INBOUND_DOMAIN}")[0] == 550
    assert rcpt_reply(smtp_server, f"{local}@x.{domain}") == (550, b"5.7.1 Relay access denied")


def test_an_unknown_address_gets_550_5_1_1(smtp_server, fallback_address):
    domain = fallback_address.address.split("@")[1]
    code, reply = rcpt_reply(smtp_server, f"nobody@{domain}")
    assert code == 550 and reply.startswith(b"5.1.1 ")


def test_an_unknown_account_gets_the_same_reply_as_an_unknown_address(smtp_server, fallback_address):
    local, domain = fallback_address.address.split("@")
    unknown_address = rcpt_reply(smtp_server, f"nobody@{domain}")
    unknown_account = rcpt_reply(smtp_server, f"{local}@no-such-account.{settings.INBOUND_DOMAIN}")
    assert unknown_account == unknown_address


def test_a_channel_turned_off_gets_550_5_2_1_and_no_row(smtp_server, fallback_address):
    fallback_address.channel.enabled = False
    fallback_address.channel.save(update_fields=["enabled"])
    with connect(smtp_server) as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail("dana@customer.example", [fallback_address.address], MESSAGE)
    code, reply = refused.value.recipients[fallback_address.address]
    assert code == 550 and reply.startswith(b"5.2.1 ")
    assert not InboundMessage.objects.exists()


def test_a_channel_turned_off_while_the_ingress_runs_is_refused_once_the_cached_answer_expires(
    smtp_server, fallback_address, monkeypatch
):
    monkeypatch.setattr(recipients, "CACHE_SECONDS", 0.5)
    assert rcpt_reply(smtp_server, fallback_address.address)[0] == 250
    fallback_address.channel.enabled = False
    fallback_address.channel.save(update_fields=["enabled"])
    # RCPT's answers are cached for CACHE_SECONDS (issue 4): the switch is not seen yet...
    assert rcpt_reply(smtp_server, fallback_address.address.upper())[0] == 250
    time.sleep(0.6)
    # ...and is once the answer has expired.
    code, reply = rcpt_reply(smtp_server, fallback_address.address)
    assert code == 550 and reply.startswith(b"5.2.1 ")


def test_the_51st_recipient_gets_452_and_the_first_50_are_kept(smtp_server, fallback_address):
    local, domain = fallback_address.address.split("@")
    recipients = [f"{local}+{n}@{domain}" for n in range(51)]
    with connect(smtp_server) as client:
        client.mail("dana@customer.example")
        replies = [client.rcpt(address)[0] for address in recipients]
        code, _ = client.data(MESSAGE)
    assert replies == [250] * 50 + [452]
    assert code == 250
    assert InboundMessage.objects.get().rcpt_tos == recipients[:50]


def test_the_452_reply_says_too_many_recipients(smtp_server, fallback_address):
    local, domain = fallback_address.address.split("@")
    with connect(smtp_server) as client:
        client.mail("dana@customer.example")
        for n in range(50):
            client.rcpt(f"{local}+{n}@{domain}")
        assert client.rcpt(fallback_address.address) == (452, b"4.5.3 Too many recipients")


def test_the_same_message_sent_twice_makes_two_rows(smtp_server, fallback_address):
    for _ in range(2):
        with connect(smtp_server) as client:
            client.sendmail("dana@customer.example", [fallback_address.address], MESSAGE)
    assert [bytes(raw) for raw in InboundMessage.objects.values_list("raw", flat=True)] == [MESSAGE, MESSAGE]


def test_8bit_headers_are_kept_byte_for_byte(smtp_server, fallback_address):
    message = (
        "From: Zoë Müller <zoe@customer.example>\r\nSubject: Grüße, ça va?\r\n\r\nHéllo\r\n".encode()
        + b"Latin-1: caf\xe9\r\n"
    )
    with connect(smtp_server) as client:
        client.sendmail(
            "zoe@customer.example", [fallback_address.address], message, mail_options=["BODY=8BITMIME"]
        )
    assert bytes(InboundMessage.objects.get().raw) == message


def test_a_non_ascii_sender_is_accepted_with_smtputf8(smtp_server, fallback_address):
    message = "From: José <josé@exämple.com>\r\nSubject: ¿Qué tal?\r\n\r\nHola\r\n".encode()
    with connect(smtp_server) as client:
        client.sendmail("josé@exämple.com", [fallback_address.address], message, mail_options=["SMTPUTF8"])
    inbound = InboundMessage.objects.get()
    assert inbound.mail_from == "josé@exämple.com"
    assert bytes(inbound.raw) == message


def test_a_non_ascii_recipient_of_ours_is_unknown_not_an_error(smtp_server, fallback_address):
    domain = fallback_address.address.split("@")[1]
    with connect(smtp_server) as client:
        client.mail("josé@exämple.com", options=["SMTPUTF8"])
        code, reply = client.rcpt(f"soporte-ñ@{domain}")
    assert code == 550 and reply.startswith(b"5.1.1 ")


def test_a_2048_octet_body_line_is_accepted(smtp_server, fallback_address):
    message = MESSAGE + b"<p>" + b"x" * 2041 + b"</p>\r\n"
    assert max(len(line) for line in message.split(b"\r\n")) == 2048
    with connect(smtp_server) as client:
        client.sendmail("dana@customer.example", [fallback_address.address], message)
    assert bytes(InboundMessage.objects.get().raw) == message


def test_a_5000_octet_body_line_gets_500_and_no_row(smtp_server, fallback_address):
    with connect(smtp_server) as client:
        client.mail("dana@customer.example")
        client.rcpt(fallback_address.address)
        code, reply = client.data(MESSAGE + b"y" * 5000 + b"\r\n")
    assert (code, reply) == (500, b"5.5.2 Line too long (see RFC 5321 4.5.3.1.6)")
    assert not InboundMessage.objects.exists()


def test_a_pipelined_transaction_gets_every_reply_in_order(smtp_server, fallback_address):
    with connect(smtp_server) as client:
        client.send(
            f"MAIL FROM:<dana@customer.example>\r\nRCPT TO:<{fallback_address.address}>\r\n"
            "RCPT TO:<x@gmail.com>\r\nDATA\r\n".encode()
        )
        replies = [client.getreply()[0] for _ in range(4)]
        client.send(MESSAGE + b".\r\n")
        replies.append(client.getreply()[0])
    assert replies == [250, 250, 550, 354, 250]
    assert InboundMessage.objects.get().rcpt_tos == [fallback_address.address]


def test_a_bounce_from_the_null_sender_is_accepted_with_an_empty_mail_from(smtp_server, fallback_address):
    with connect(smtp_server) as client:
        sent = client.sendmail("", [fallback_address.address], MESSAGE)
    assert sent == {}
    assert InboundMessage.objects.get().mail_from == ""


@pytest.mark.parametrize("argument", ["FROM:<", 'FROM:"', "FROM: <"])
def test_garbage_that_crashes_the_address_parser_gets_a_syntax_error_not_451(smtp_server, argument):
    with connect(smtp_server) as client:
        assert client.docmd("MAIL", argument)[0] == 553  # malformed address: permanent
        assert client.mail("dana@customer.example")[0] == 250  # the session goes on


def test_rcpt_before_mail_gets_503(smtp_server, fallback_address):
    with connect(smtp_server) as client:
        assert client.rcpt(fallback_address.address)[0] == 503


def test_a_malformed_recipient_gets_a_syntax_error_not_a_crash(smtp_server, fallback_address):
    with connect(smtp_server) as client:
        client.mail("dana@customer.example")
        assert client.rcpt("dana@@customer.example")[0] == 553
        assert client.docmd("RCPT", "TO:")[0] == 501
