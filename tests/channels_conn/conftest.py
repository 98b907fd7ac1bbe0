"""Fixtures for the SMTP ingress: a real server on a free port, and mailboxes to send to."""

import contextlib
import socket
from collections.abc import Callable, Iterator

import pytest
from django.db import connection

from channels_conn.models import FallbackAddress
from channels_conn.smtp import IngressController
from inboxhub.celery import app as celery_app
from tests.factories import make_account


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_for_subprocess() -> str:
    """DATABASE_URL of the test database, for subprocesses (runsmtp, a Celery worker)."""
    db = connection.settings_dict
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def fallback_address(transactional_db) -> FallbackAddress:
    """The default inbox's fallback address of a fresh account, committed for the server's threads."""
    admin = make_account()
    return FallbackAddress.objects.select_related("channel").get(account=admin.account)


@pytest.fixture
def start_smtp(transactional_db) -> Iterator[Callable[..., IngressController]]:
    """Start the real ingress in a thread; options override settings (data_size_limit, timeout)."""
    started: list[IngressController] = []

    def start(**options) -> IngressController:
        controller = IngressController(host="127.0.0.1", port=free_port(), **options)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        with contextlib.suppress(AssertionError):
            controller.stop()


@pytest.fixture
def smtp_server(start_smtp) -> IngressController:
    return start_smtp()


class IngestStandIn:
    """Stands in for ingest.pipeline.ingest_inbound only: records ids, raises `failure` if set.

    `failing_ids`, when set, limits the failure to those rows.
    """

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.failure: Exception | None = None
        self.failing_ids: set[int] | None = None

    def __call__(self, inbound, lookups=None) -> list:
        self.calls.append(inbound.pk)
        if self.failure is not None and (self.failing_ids is None or inbound.pk in self.failing_ids):
            raise self.failure
        return []  # the conversations it started: none


@pytest.fixture
def ingest_stand_in(monkeypatch) -> IngestStandIn:
    """For tests of the claim and retry logic, which must not depend on the real pipeline."""
    # Enqueued tasks run in the test's process, as without REDIS_URL.
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    stand_in = IngestStandIn()
    monkeypatch.setattr("ingest.pipeline.ingest_inbound", stand_in)
    return stand_in
