"""The effective Celery configuration: a misspelt setting would be silently ignored (DESIGN "Celery")."""

from channels_conn import spool
from inboxhub.celery import app


def test_tasks_are_acknowledged_only_after_they_ran():
    assert app.conf.task_acks_late is True


def test_a_task_whose_worker_died_goes_back_to_the_queue():
    assert app.conf.task_reject_on_worker_lost is True


def test_a_worker_reserves_one_task_at_a_time():
    assert app.conf.worker_prefetch_multiplier == 1


def test_tasks_have_a_soft_and_a_hard_time_limit():
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit


def test_tasks_end_well_before_redis_would_redeliver_them():
    assert app.conf.task_time_limit < app.conf.broker_transport_options["visibility_timeout"]


def test_long_tasks_are_cancelled_when_the_broker_connection_is_lost():
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is True


def test_tasks_use_the_django_task_class_with_delay_on_commit():
    assert hasattr(app.Task, "delay_on_commit")


def test_the_inbound_sweep_runs_every_30_seconds():
    app.loader.import_default_modules()  # what a starting worker does: autodiscover tasks.py
    entry = app.conf.beat_schedule["sweep-inbound"]
    assert entry["task"] == "channels_conn.tasks.sweep_inbound_task"
    assert entry["schedule"] == 30.0
    assert entry["task"] in app.tasks


def test_every_task_name_the_spool_publishes_is_registered_by_the_pipeline():
    # No import_default_modules(): a process that only publishes (the ingress, the web app's retry)
    # knows the tasks from Django's start-up, which task_always_eager needs to run them in place.
    for name in (spool.PROCESS_TASK, spool.PROCESS_BATCH_TASK, spool.SWEEP_TASK):
        assert app.tasks[name].__module__ == "ingest.tasks", name


def test_workers_keep_their_database_connection_across_tasks():
    # Unset, Celery's Django fixup opens a new PostgreSQL connection for every task.
    assert app.conf.get("CELERY_DB_REUSE_MAX") >= 100
