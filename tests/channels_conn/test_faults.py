"""Fault tests with real processes: runsmtp killed, Redis down, the database down, a real worker (F1–F4)."""

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from channels_conn.models import InboundMessage
from channels_conn.spool import sweep_inbound
from tests.channels_conn.conftest import database_url_for_subprocess, free_port

BASE_DIR = Path(settings.BASE_DIR)
State = InboundMessage.State
MESSAGE = (
    b"From: dana@customer.example\r\nSubject: Fault\r\nMessage-ID: <fault@customer.example>\r\n\r\nHi\r\n"
)


def redis_nobody_listens_on() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def own_redis_db() -> str:
    """A Redis database of this test process alone (xdist workers run side by side)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return f"redis://127.0.0.1:6379/{11 + int(worker or 0)}"


def child_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env |= {"DJANGO_SETTINGS_MODULE": "inboxhub.settings", "DATABASE_URL": database_url_for_subprocess()}
    return env | overrides


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path):
    with log.open("wb") as output:
        proc = subprocess.Popen(args, cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"runsmtp did not listen within {timeout} s:\n{log.read_text()}")


@contextmanager
def runsmtp(tmp_path: Path, **env: str):
    port = free_port()
    log = tmp_path / "runsmtp.log"
    args = [sys.executable, "manage.py", "runsmtp", "--host", "127.0.0.1", "--port", str(port)]
    with process(args, child_env(**env), log) as proc:
        wait_for_port(port, proc, log)
        yield proc, port


def send(port: int, address: str, message: bytes = MESSAGE) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as client:
        client.ehlo("client.example")
        client.mail("dana@customer.example")
        client.rcpt(address)
        return client.data(message)


def test_a_message_answered_250_survives_kill_9_and_the_sweep_processes_it(
    tmp_path, fallback_address, ingest_stand_in
):
    with runsmtp(tmp_path, REDIS_URL=redis_nobody_listens_on()) as (proc, port):
        code, reply = send(port, fallback_address.address)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)
    assert code == 250
    inbound = InboundMessage.objects.get()
    assert reply.decode() == f"2.0.0 Ok: queued as {inbound.pk}"
    assert (bytes(inbound.raw), inbound.state) == (MESSAGE, State.RECEIVED)
    assert sweep_inbound(older_than_seconds=0) == 1
    inbound.refresh_from_db()
    assert inbound.state == State.PROCESSED


def test_with_redis_down_every_message_gets_250_and_waits_in_the_spool(
    tmp_path, fallback_address, ingest_stand_in, capsys
):
    with runsmtp(tmp_path, REDIS_URL=redis_nobody_listens_on()) as (_, port):
        codes = [send(port, fallback_address.address)[0] for _ in range(5)]
    assert codes == [250] * 5
    call_command("ingest_status", "--json")
    assert json.loads(capsys.readouterr().out)["received"] == 5
    assert sweep_inbound(older_than_seconds=0) == 5
    assert set(InboundMessage.objects.values_list("state", flat=True)) == {State.PROCESSED}


def test_with_the_database_down_runsmtp_answers_451_never_a_bounce(tmp_path, fallback_address):
    dead_database = database_url_for_subprocess().replace(
        f":{settings.DATABASES['default']['PORT'] or 5432}/", f":{free_port()}/"
    )
    with (
        runsmtp(tmp_path, DATABASE_URL=dead_database) as (_, port),
        smtplib.SMTP("127.0.0.1", port) as client,
    ):
        client.ehlo("client.example")
        client.mail("dana@customer.example")
        assert client.rcpt(fallback_address.address) == (
            451,
            b"4.3.0 Error: local problem, please try again later",
        )


def test_a_real_worker_claims_the_message_runsmtp_enqueued(tmp_path, fallback_address):
    broker = own_redis_db()
    redis.Redis.from_url(broker).flushdb()
    worker_args = [
        *(sys.executable, "-m", "celery", "-A", "inboxhub", "worker"),
        *("--pool", "solo", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "info"),
    ]
    with (
        process(worker_args, child_env(REDIS_URL=broker), tmp_path / "worker.log"),
        runsmtp(tmp_path, REDIS_URL=broker) as (_, port),
    ):
        assert send(port, fallback_address.address)[0] == 250
        inbound = InboundMessage.objects.get()
        deadline = time.monotonic() + 15
        while inbound.attempts == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
            inbound.refresh_from_db()
    redis.Redis.from_url(broker).flushdb()
    # The real pipeline decides processed or not; the worker's claim is what this test is about.
    assert inbound.attempts == 1, (tmp_path / "worker.log").read_text()[-3000:]
