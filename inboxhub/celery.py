"""The Celery app; its options come from settings (CELERY_* names)."""

import os
import time

from celery import Celery
from celery.signals import beat_init, celeryd_init, task_postrun

from inboxhub.lib.secret_key import MISSING, secret_key_is_set

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inboxhub.settings")

app = Celery("inboxhub", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_postrun.connect
def _drop_broken_connections(task=None, **_kwargs) -> None:
    """After a task, close a connection that failed (a PostgreSQL restart) or outlived CONN_MAX_AGE.

    Not `close_old_connections()` before and after every task: with
    CONN_HEALTH_CHECKS it makes the next query a `SELECT 1` round trip even
    when nothing failed. A connection that died between tasks fails the next
    claim, which tries once more on a new one (`spool.on_live_connection`).
    """
    # An eager task runs inside its caller's connection (and maybe transaction): leave that alone.
    if task is not None and task.request.is_eager:
        return
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        too_old = connection.close_at is not None and time.monotonic() >= connection.close_at
        if connection.errors_occurred or too_old:
            connection.close_if_unusable_or_obsolete()


@celeryd_init.connect
@beat_init.connect
def _refuse_to_start_without_a_secret_key(**_kwargs) -> None:
    """A worker or beat without SECRET_KEY stops before it takes a task (issue 16).

    SystemExit, because Celery logs and ignores an Exception raised by a signal's receiver.
    """
    if not secret_key_is_set():
        raise SystemExit(MISSING)


@celeryd_init.connect
def _yield_the_cpu_to_the_ingress(**_kwargs) -> None:
    """Run the worker (and the pool it forks) at WORKER_CPU_PRIORITY.

    On a small server the ingress, the web app and the workers share the cores.
    A burst of mail should be answered 250 at the ingress's pace and worked off
    afterwards from the durable spool, rather than slowing every SMTP session
    and page while the workers run (issue 4). Never raises the priority.
    """
    from django.conf import settings

    priority = settings.WORKER_CPU_PRIORITY
    if priority == "idle":
        if hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        priority = 19
    if os.getpriority(os.PRIO_PROCESS, 0) < priority:
        os.setpriority(os.PRIO_PROCESS, 0, priority)
