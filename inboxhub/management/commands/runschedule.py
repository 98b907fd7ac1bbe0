"""`make run` without Redis: the beat schedule's tasks, run in this process on their intervals.

With Redis a worker's thread keeps the schedule (`worker --beat-thread`). Without it there is no
worker: tasks run where they are sent, so this process runs each entry of CELERY_BEAT_SCHEDULE
itself — the spool's sweep, the replies' and invitations' sweeps, the spool's retention, the
presence prune — at once on start (what a stop left behind), then every `schedule` seconds.
Forked from the loaded app like the other children, it costs little memory and no interpreter
start every 30 s.
"""

import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from inboxhub.celery import app

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the periodic tasks (CELERY_BEAT_SCHEDULE) in this process: one server without Redis."

    def handle(self, *args, **options):
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        schedule = settings.CELERY_BEAT_SCHEDULE
        due = dict.fromkeys(schedule, time.monotonic())
        while not stop.is_set():
            for name, entry in schedule.items():
                if time.monotonic() >= due[name]:
                    run(name, entry["task"])
                    due[name] = time.monotonic() + float(entry["schedule"])
            stop.wait(max(0.0, min(due.values()) - time.monotonic()))


def run(name: str, task: str) -> None:
    """One entry's task, here and now; a failure is logged and the schedule goes on."""
    close_old_connections()
    result = app.tasks[task].apply()
    if result.failed():
        logger.error("scheduled task %s failed:\n%s", name, result.traceback)
    close_old_connections()
