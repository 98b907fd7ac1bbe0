"""The Celery app; its options come from settings (CELERY_* names)."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inboxhub.settings")

app = Celery("inboxhub", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _drop_stale_connections(task=None, **_kwargs) -> None:
    # A PostgreSQL restart leaves workers holding dead connections; drop them between tasks.
    # An eager task runs inside its caller's connection (and maybe transaction): leave that alone.
    if task is not None and task.request.is_eager:
        return
    from django.db import close_old_connections

    close_old_connections()
