"""Failures at the real ingress stay transient or leave nothing behind (G2, F3, F9, F10)."""

import asyncio
import smtplib
import socket
import time

import psycopg
import pytest
from aiosmtpd.smtp import Envelope, Session
from django.db import connection

from channels_conn.models import InboundMessage
from channels_conn.smtp import IngressHandler
from inboxhub.celery import app as celery_app
from tests.channels_conn.conftest import free_port

MESSAGE = b"From: dana@customer.example\r\nSubject: Hello\r\nMessage-ID: <f1@customer.example>\r\n\r\nHi!\r\n"


def send(server, address: str) -> tuple[int, bytes]:
    with smtplib.SMTP(server.hostname, server.port, timeout=10) as client:
        client.ehlo("client.example")
        client.mail("dana@customer.example")
        client.rcpt(address)
        return client.data(MESSAGE)


@pytest.fixture
def spool_table_locked(transactional_db, settings):
    """Another session holds an exclusive lock on the spool table; the ingress gives up after 1 s."""
    settings.SMTP_DB_TIMEOUT = 1
    db = connection.settings_dict
    locker = psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    )
    locker.execute("LOCK TABLE channels_conn_inboundmessage IN ACCESS EXCLUSIVE MODE")
    yield locker
    locker.close()


def test_a_spool_insert_that_times_out_gets_451_4_3_0_and_no_row(
    smtp_server, fallback_address, spool_table_locked
):
    code, reply = send(smtp_server, fallback_address.address)
    spool_table_locked.rollback()
    assert (code, reply) == (451, b"4.3.0 Error: local problem, please try again later")
    assert not InboundMessage.objects.exists()


def test_the_sender_retry_after_451_is_stored_once(smtp_server, fallback_address, spool_table_locked):
    with smtplib.SMTP(smtp_server.hostname, smtp_server.port, timeout=10) as client:
        client.ehlo("client.example")
        client.mail("dana@customer.example")
        client.rcpt(fallback_address.address)
        assert client.data(MESSAGE)[0] == 451
        spool_table_locked.rollback()
        assert client.sendmail("dana@customer.example", [fallback_address.address], MESSAGE) == {}
    assert InboundMessage.objects.count() == 1


@pytest.fixture
def database_unreachable(transactional_db):
    """New database connections go to a port where nothing listens (the server is down)."""
    real_port = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = free_port()
    yield
    connection.settings_dict["PORT"] = real_port


def test_a_recipient_lookup_with_the_database_down_gets_451_not_a_bounce(
    fallback_address, start_smtp, database_unreachable
):
    server = start_smtp()  # its database threads connect only now, to the dead port
    with smtplib.SMTP(server.hostname, server.port, timeout=10) as client:
        client.ehlo("client.example")
        client.mail("dana@customer.example")
        assert client.rcpt(fallback_address.address) == (
            451,
            b"4.3.0 Error: local problem, please try again later",
        )


def test_a_client_that_drops_mid_data_leaves_no_row_and_the_server_keeps_serving(
    smtp_server, fallback_address
):
    with socket.create_connection((smtp_server.hostname, smtp_server.port), timeout=10) as sock:
        replies = sock.makefile("rb")
        replies.readline()
        for command in (
            "EHLO client.example",
            "MAIL FROM:<dana@customer.example>",
            f"RCPT TO:<{fallback_address.address}>",
            "DATA",
        ):
            sock.sendall(command.encode() + b"\r\n")
            while (line := replies.readline())[3:4] == b"-":
                pass
        assert line.startswith(b"354")
        sock.sendall(MESSAGE[:40])
    time.sleep(0.3)
    assert not InboundMessage.objects.exists()
    assert send(smtp_server, fallback_address.address)[0] == 250
    assert InboundMessage.objects.count() == 1


def test_an_idle_client_is_disconnected_after_the_idle_timeout(start_smtp, fallback_address, settings):
    settings.SMTP_IDLE_TIMEOUT = 1
    server = start_smtp()
    with smtplib.SMTP(server.hostname, server.port, timeout=10) as client:
        client.ehlo("client.example")
        time.sleep(1.5)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.mail("dana@customer.example")


def end_every_other_database_session() -> None:
    """What a PostgreSQL restart does to open connections: the server ends them."""
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    ) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [db["NAME"]],
        )
    connection.close()  # the test's own connection was one of them


def test_connections_the_database_dropped_are_replaced_and_the_message_gets_250(
    smtp_server, fallback_address
):
    assert send(smtp_server, fallback_address.address)[0] == 250
    end_every_other_database_session()
    assert send(smtp_server, fallback_address.address)[0] == 250
    assert InboundMessage.objects.count() == 2


def test_a_row_committed_while_the_ingress_stops_still_gets_250_and_waits_for_the_sweep(
    fallback_address, monkeypatch
):
    monkeypatch.setattr(celery_app.conf, "task_always_eager", False)
    handler = IngressHandler()
    handler.publisher.stop()  # what stopping does to the publishing thread
    loop = asyncio.new_event_loop()
    session, envelope = Session(loop), Envelope()
    session.peer, session.host_name = ("192.0.2.7", 2525), "client.example"
    envelope.mail_from, envelope.rcpt_tos, envelope.original_content = (
        "dana@customer.example",
        [fallback_address.address],
        MESSAGE,
    )
    try:
        reply = loop.run_until_complete(handler.handle_DATA(None, session, envelope))
    finally:
        handler.close()
        loop.close()
    inbound = InboundMessage.objects.get()
    assert reply == f"250 2.0.0 Ok: queued as {inbound.pk}"
    assert (inbound.state, inbound.attempts) == (InboundMessage.State.RECEIVED, 0)
