"""Celery entry points of the ingest pipeline, under the names the spool publishes (G2, G3)."""

from celery import shared_task

from channels_conn import spool
from inboxhub.lib.db import on_live_connection
from ingest import compaction, pipeline


@shared_task(name=spool.PROCESS_TASK)
def process_inbound(inbound_id: int) -> str:
    """Ingest one spooled message by id; a no-op when another run has it or it is done (G3).

    Nothing enqueues it any more (ids travel in `process_inbound_batch`); it stays
    registered so that tasks queued by an older ingress still run after an upgrade.
    """
    return pipeline.process_inbound_message(inbound_id)


@shared_task(name=spool.PROCESS_BATCH_TASK)
def process_inbound_batch(inbound_ids: list[int]) -> dict[str, str]:
    """Ingest several spooled messages, each on its own as `process_inbound` does (G3).

    Ids that did not get their turn within the batch's time budget go back to
    the queue, so every message starts well inside the task's time limits.
    """
    return pipeline.process_inbound_batch(inbound_ids)


@shared_task(name=spool.PRUNE_TASK)
def prune_spool_task() -> int:
    """Delete the raw mail of messages processed before the retention period; scheduled hourly."""
    return spool.prune_spool()


@shared_task(name=spool.SWEEP_TASK)
def sweep_inbound_task() -> int:
    """Re-enqueue spooled messages left unprocessed (G2) and decide new conversations left waiting (D).

    Scheduled in CELERY_BEAT_SCHEDULE.
    """
    enqueued = on_live_connection(spool.sweep_inbound)
    pipeline.assign_waiting_everywhere()
    return enqueued


@shared_task(name="ingest.tasks.compact_spool_task")
def compact_spool_task() -> int:
    """Keep processed mail without the attachment bytes its messages store; scheduled every minute."""
    return compaction.compact_processed()
