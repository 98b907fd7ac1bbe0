"""Fault tests over real runsmtp and real Celery workers running the real pipeline (F2, F5, F6, L1, L3).

Each test runs the processes it needs against the test database and a Redis
database of its own; nothing here stands in for `ingest.pipeline`.
"""

import base64
import json
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings
from django.utils import timezone
from django_scopes import scopes_disabled

from channels_conn.models import FallbackAddress, InboundMessage
from channels_conn.spool import CLAIM_GRACE_SECONDS
from inboxes.models import Conversation, Message
from tests.channels_conn.conftest import database_url_for_subprocess
from tests.channels_conn.test_faults import BASE_DIR, child_env, runsmtp, send
from tests.factories import make_account

# One xdist worker runs these one after another: each starts several processes on a 2-core machine.
pytestmark = pytest.mark.xdist_group("processes")

State = InboundMessage.State


def own_redis_db() -> str:
    """Redis databases 14 and 15, one per xdist worker (test_faults.py uses 11 and 12, the bench 13).

    TEST_BROKER_URL overrides it, for two suites running side by side on one Redis.
    """
    if os.environ.get("TEST_BROKER_URL"):
        return os.environ["TEST_BROKER_URL"]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return f"redis://127.0.0.1:6379/{14 + int(worker or 0) % 2}"


@pytest.fixture
def broker() -> Iterator[str]:
    url = own_redis_db()
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            rows = list(InboundMessage.objects.values("pk", "state", "attempts", "claimed_at", "error"))
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            pytest.fail(f"{what} did not happen within {timeout} s; spool {rows} at {timezone.now()}\n{tail}")
        time.sleep(0.05)


@contextmanager
def celery_worker(tmp_path: Path, broker: str, *, name: str, concurrency: int = 1, **environ: str):
    """A real `celery -A inboxhub worker` in a process group of its own, killed with it at the end."""
    log = tmp_path / f"worker-{name}.log"
    args = [
        *(sys.executable, "-m", "celery", "-A", "inboxhub", "worker", "-n", f"{name}@%h", "-l", "info"),
        *("--concurrency", str(concurrency), "--without-heartbeat", "--without-gossip", "--without-mingle"),
    ]
    with log.open("wb") as output:
        proc = subprocess.Popen(
            args,
            cwd=BASE_DIR,
            env=child_env(REDIS_URL=broker, **environ),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: proc.poll() is not None or " ready." in log.read_text(errors="replace"),
            timeout=30,
            what="the worker getting ready",
            log=log,
        )
        assert proc.poll() is None, log.read_text()
        proc.log = log
        yield proc
    finally:
        kill_group(proc)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a worker and its pool processes, as the OOM killer or `docker kill` would."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def sweep(broker: str, **env: str) -> str:
    """Run the sweep as beat would, in its own process, enqueuing to the broker."""
    result = subprocess.run(
        [sys.executable, "manage.py", "sweep_inbound", "--older-than", "0"],
        cwd=BASE_DIR,
        env=child_env(REDIS_URL=broker, **env),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout


def queued_batches(queue: redis.Redis) -> list[list[int]]:
    """The inbound ids of each task message waiting in the Celery queue, oldest first."""
    batches = []
    for raw in reversed(queue.lrange("celery", 0, -1)):  # kombu LPUSHes, workers BRPOP
        envelope = json.loads(raw)
        assert envelope["headers"]["task"] == "channels_conn.tasks.process_inbound_batch"
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        batches.append(args[0])
    return batches


def queued_ids(queue: redis.Redis) -> list[int]:
    return [inbound_id for batch in queued_batches(queue) for inbound_id in batch]


def mail(message_id: str, *, subject: str = "Where is my order?", html: str | None = None) -> bytes:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "Dana Customer <dana@customer.example>"
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Message-ID"] = f"<{message_id}>"
    message.set_content("Hello, I ordered a printer two weeks ago and it has not arrived.\n")
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message.as_bytes()


def long_html_mail(message_id: str) -> bytes:
    """An order confirmation with a 2,000-row table (about 240 KB): seconds of HTML sanitizing."""
    row = (
        "<tr><td style='padding:4px'><a href='https://shop.example/p/{n}'>Item {n}</a></td>"
        "<td><b>{n}.00</b> EUR</td></tr>\n"
    )
    table = "".join(row.format(n=n) for n in range(2000))
    return mail(message_id, subject="Your order", html=f"<html><body><table>{table}</table></body></html>")


def states() -> list[str]:
    return list(InboundMessage.objects.values_list("state", flat=True))


def all_processed(expected: int) -> Callable[[], bool]:
    return lambda: InboundMessage.objects.filter(state=State.PROCESSED).count() == expected


def messages_by_id() -> dict[str, int]:
    with scopes_disabled():
        ids = list(Message.objects.values_list("message_id", flat=True))
    return {message_id: ids.count(message_id) for message_id in ids}


# --- F6: a worker killed in the middle of a message ---------------------------------------


def test_a_worker_killed_mid_message_leaves_it_to_the_sweep_and_a_new_worker_makes_one_message(
    tmp_path, fallback_address, broker
):
    with runsmtp(tmp_path, REDIS_URL=broker) as (_, port):
        with celery_worker(tmp_path, broker, name="doomed") as worker:
            assert send(port, fallback_address.address, long_html_mail("order-7@shop.example"))[0] == 250
            wait_until(lambda: states() == [State.PROCESSING], timeout=20, what="the claim", log=worker.log)
            kill_group(worker)
        with scopes_disabled():
            assert not Message.objects.exists(), "the worker finished before it was killed"
        inbound = InboundMessage.objects.get()
        assert (inbound.state, inbound.attempts) == (State.PROCESSING, 1)
        # A dead worker's claim is abandoned once the task time limit has passed: age it that far.
        abandoned_at = timezone.now() - timedelta(
            seconds=settings.CELERY_TASK_TIME_LIMIT + CLAIM_GRACE_SECONDS
        )
        InboundMessage.objects.filter(pk=inbound.pk).update(claimed_at=abandoned_at)
        with celery_worker(tmp_path, broker, name="fresh") as worker:
            assert sweep(broker) == "Re-enqueued 1 inbound message(s).\n"
            wait_until(all_processed(1), timeout=30, what="processing by the new worker", log=worker.log)
    inbound.refresh_from_db()
    assert (inbound.state, inbound.attempts, inbound.error) == (State.PROCESSED, 2, "")
    assert messages_by_id() == {"order-7@shop.example": 1}
    with scopes_disabled():
        assert Conversation.objects.count() == 1


# --- F2: the ingress killed between end-of-DATA and its commit ----------------------------


@contextmanager
def spool_table_locked():
    """Another session holds a lock that makes the ingress's INSERT wait (reads still pass)."""
    with psycopg.connect(database_url_for_subprocess()) as conn:
        conn.execute("LOCK TABLE channels_conn_inboundmessage IN SHARE MODE")
        yield conn
        conn.rollback()


def backends_waiting_for_a_lock() -> int:
    with psycopg.connect(database_url_for_subprocess(), autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()[0]


def backends_inserting_into_the_spool() -> int:
    with psycopg.connect(database_url_for_subprocess(), autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query LIKE 'INSERT INTO %%channels_conn_inboundmessage%%' "
            "AND state <> 'idle'"
        ).fetchone()[0]


def test_runsmtp_killed_before_its_250_gives_a_drop_and_the_retry_makes_one_message(
    tmp_path, fallback_address, broker
):
    raw = mail("retried@customer.example")
    outcome: dict[str, object] = {}

    def client(port: int) -> None:
        try:
            outcome["reply"] = send(port, fallback_address.address, raw)
        except (OSError, smtplib.SMTPException) as error:
            outcome["error"] = error

    with spool_table_locked():
        with runsmtp(tmp_path, REDIS_URL=broker) as (ingress, port):
            sending = threading.Thread(target=client, args=(port,))
            sending.start()
            wait_until(lambda: backends_waiting_for_a_lock() == 1, timeout=15, what="the INSERT waiting")
            ingress.send_signal(signal.SIGKILL)
            ingress.wait(timeout=5)
            sending.join(timeout=15)
        assert "reply" not in outcome
        assert isinstance(outcome["error"], smtplib.SMTPServerDisconnected)
        assert backends_inserting_into_the_spool() == 1  # still waiting for the lock
    # The killed ingress's INSERT commits once the lock goes (autocommit): a whole message nobody was
    # told about. It is never half a message, and it is kept rather than lost.
    wait_until(lambda: backends_inserting_into_the_spool() == 0, timeout=15, what="the orphan INSERT ending")
    [orphan] = InboundMessage.objects.all()
    assert bytes(orphan.raw) == raw and orphan.state == State.RECEIVED

    with (
        celery_worker(tmp_path, broker, name="retry") as worker,
        runsmtp(tmp_path, REDIS_URL=broker) as (_, port),
    ):
        assert sweep(broker) == "Re-enqueued 1 inbound message(s).\n"  # the orphan, a minute later
        wait_until(all_processed(1), timeout=30, what="processing the orphan", log=worker.log)
        assert send(port, fallback_address.address, raw)[0] == 250  # the sender's retry
        wait_until(all_processed(2), timeout=30, what="processing the retry", log=worker.log)
    assert messages_by_id() == {"retried@customer.example": 1}


# --- F5: queued tasks lost when Redis restarts without persistence ------------------------


def test_tasks_lost_with_redis_are_all_processed_after_the_sweep_and_none_twice(
    tmp_path, fallback_address, broker
):
    message_ids = [f"lost-{n}@customer.example" for n in range(10)]
    queue = redis.Redis.from_url(broker)
    with runsmtp(tmp_path, REDIS_URL=broker) as (_, port):
        codes = [send(port, fallback_address.address, mail(message_id))[0] for message_id in message_ids]
        # The ingress hands the ids to Redis after its 250, from a thread of its own.
        wait_until(lambda: len(queued_ids(queue)) == 10, timeout=15, what="the ten ids queued")
    assert codes == [250] * 10
    # What a restart of a Redis without RDB or AOF does to the queue (RELIABILITY-SECURITY.md F5).
    queue.flushdb()
    with celery_worker(tmp_path, broker, name="after-restart", concurrency=2) as worker:
        assert set(states()) == {State.RECEIVED}
        assert sweep(broker) == "Re-enqueued 10 inbound message(s).\n"
        wait_until(all_processed(10), timeout=30, what="processing after the sweep", log=worker.log)
    assert messages_by_id() == dict.fromkeys(message_ids, 1)
    assert set(InboundMessage.objects.values_list("attempts", flat=True)) == {1}


def test_the_sweep_hands_many_rows_to_the_workers_in_batches(tmp_path, fallback_address, broker):
    received = [
        InboundMessage.objects.create(raw=mail(f"batch-{n}@customer.example"), size=1, rcpt_tos=[])
        for n in range(10)
    ]
    assert sweep(broker, INGEST_BATCH_SIZE="4") == "Re-enqueued 10 inbound message(s).\n"
    ids = [row.pk for row in received]
    assert queued_batches(redis.Redis.from_url(broker)) == [ids[:4], ids[4:8], ids[8:]]


def test_workers_get_only_the_cpu_time_nothing_else_wants(tmp_path, broker):
    assert settings.WORKER_CPU_PRIORITY == "idle"
    with celery_worker(tmp_path, broker, name="idle", concurrency=2) as worker:
        pids = [worker.pid, *pool_children(worker.pid)]
        assert len(pids) == 3, pids
        assert {os.sched_getscheduler(pid) for pid in pids} == {os.SCHED_IDLE}
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_workers_can_run_at_a_nice_value_instead(tmp_path, broker):
    with celery_worker(tmp_path, broker, name="nice", concurrency=2, WORKER_CPU_PRIORITY="12") as worker:
        pids = [worker.pid, *pool_children(worker.pid)]
        assert len(pids) == 3, pids
        assert {os.sched_getscheduler(pid) for pid in pids} == {os.SCHED_OTHER}
        assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in pids} == {12}
    assert os.getpriority(os.PRIO_PROCESS, 0) < 12


def pool_children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == pid:  # state, then the parent's pid
            children.append(int(stat.parent.name))
    return children


# --- L3: the same message delivered twice -------------------------------------------------


def test_the_same_message_sent_twice_at_once_gets_two_250s_and_makes_one_message(
    tmp_path, fallback_address, broker
):
    raw = mail("twice@customer.example")
    replies: list[tuple[int, bytes]] = []

    def client(port: int) -> None:
        replies.append(send(port, fallback_address.address, raw))

    with (
        celery_worker(tmp_path, broker, name="dup", concurrency=2) as worker,
        runsmtp(tmp_path, REDIS_URL=broker) as (_, port),
    ):
        clients = [threading.Thread(target=client, args=(port,)) for _ in range(2)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=30)
        wait_until(all_processed(2), timeout=30, what="processing both copies", log=worker.log)
    assert [code for code, _ in replies] == [250, 250]
    assert messages_by_id() == {"twice@customer.example": 1}
    with scopes_disabled():
        assert Conversation.objects.count() == 1


# --- L1: many concurrent sessions, scaled for CI ------------------------------------------


def test_forty_concurrent_sessions_of_five_messages_are_all_accepted_and_processed(
    tmp_path, transactional_db, broker
):
    accounts = [make_account() for _ in range(4)]
    with scopes_disabled():
        addresses = list(
            FallbackAddress.objects.filter(account__in=[m.account for m in accounts]).values_list(
                "address", flat=True
            )
        )
    assert len(addresses) == 4
    codes: list[int] = []

    def session(number: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.ehlo("client.example")
            for n in range(5):
                client.mail("dana@customer.example")
                client.rcpt(addresses[(number + n) % 4])
                codes.append(client.data(mail(f"load-{number}-{n}@customer.example"))[0])

    with (
        celery_worker(tmp_path, broker, name="load", concurrency=2) as worker,
        runsmtp(tmp_path, REDIS_URL=broker) as (_, port),
    ):
        sessions = [threading.Thread(target=session, args=(number,)) for number in range(40)]
        for thread in sessions:
            thread.start()
        for thread in sessions:
            thread.join(timeout=60)
        assert codes == [250] * 200
        wait_until(all_processed(200), timeout=60, what="processing 200 messages", log=worker.log)
    counts = messages_by_id()
    assert len(counts) == 200 and set(counts.values()) == {1}
    with scopes_disabled():
        per_inbox = sorted(Message.objects.values_list("inbox_id", flat=True).distinct())
    assert len(per_inbox) == 4
