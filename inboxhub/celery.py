"""The Celery app; its options come from settings (CELERY_* names)."""

import contextlib
import gc
import os
import time
from pathlib import Path

import click
from celery import Celery, bootsteps
from celery.signals import beat_init, celeryd_init, task_postrun, worker_before_create_process

from inboxhub.lib.secret_key import MISSING, secret_key_is_set

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inboxhub.settings")

app = Celery("inboxhub", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class BeatThread(bootsteps.StartStopStep):
    """`worker --beat-thread`: the beat schedule (CELERY_BEAT_SCHEDULE) kept by a thread of the worker.

    For one server (`make run`): the sweeps run without a beat process, nor the process Celery's own
    `--beat` forks, each costing tens of MiB for a clock (issue 18). Run one such worker at most, as
    with `--beat`; docker-compose runs beat as a service of its own.
    """

    label = "Beat thread"
    conditional = True

    def __init__(self, worker, beat_thread=False, **kwargs):
        self.enabled = beat_thread
        super().__init__(worker, **kwargs)

    def create(self, worker):
        # Imported here: only such a worker loads the scheduler (shelve, dbm), not every process.
        from celery.beat import EmbeddedService

        return EmbeddedService(
            worker.app,
            schedule_filename=worker.schedule_filename,
            scheduler_cls=worker.scheduler,
            thread=True,
        )


app.steps["worker"].add(BeatThread)
app.user_options["worker"].add(
    click.Option(
        ["--beat-thread"],
        is_flag=True,
        default=False,
        help="Keep the beat schedule in a thread of this worker (one server: no beat process).",
    )
)


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
    _lower_the_session_group(min(SESSION_NICE_FLOOR, 19 if priority == "idle" else priority))
    if priority == "idle":
        if hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        priority = 19
    if os.getpriority(os.PRIO_PROCESS, 0) < priority:
        os.setpriority(os.PRIO_PROCESS, 0, priority)


# Linux shares the CPU between sessions by their nice value first; SCHED_IDLE counts only inside the
# worker's own session (and makes any other waking task take its core at once). A session at nice 19
# (weight 15 against 1024) got no mail processed while the web app kept the cores busy, and at nice 10
# (110) mail at 50/s waited 103 s (p99); at nice 2 (655: about a third of the CPU against a busy web
# app, its floor) 36 s, and a burst is still accepted at the ingress's pace (bench/footprint.py,
# bench/ingest.py; issue 18).
SESSION_NICE_FLOOR = 2


def _lower_the_session_group(nice: int) -> None:
    """Give a worker that leads its own session (as `make run` starts it) that nice value as a group.

    Linux with autogroup shares the CPU between sessions first, and a nice value or SCHED_IDLE counts
    only against processes of the same session: the worker, alone in its own, would get as much as
    the web app's or the ingress's session. The session's own nice value (/proc/self/autogroup) counts
    between sessions. Only ever lowers it; leaves a session it does not lead (a terminal's) alone.
    """
    autogroup = Path("/proc/self/autogroup")
    if os.getsid(0) != os.getpid() or not autogroup.exists():
        return
    with contextlib.suppress(OSError, ValueError, IndexError):
        # "/autogroup-42 nice 0"
        if int(autogroup.read_text().split()[-1]) < nice:
            autogroup.write_text(str(nice))


@worker_before_create_process.connect
def _share_the_loaded_app_with_the_pool(**_kwargs) -> None:
    """Before the worker forks a pool process: what it has loaded moves out of the collector's reach,
    so the pool process's collections do not write to (and so copy) the pages it shares with the
    worker (issue 18)."""
    gc.freeze()
