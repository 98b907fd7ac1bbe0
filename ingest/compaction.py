"""The spool's processed mail kept without its attachments' bytes, deflated, and given back whole (issue 18).

Once a spool row is processed, its messages hold each attachment as a file with
its sha256, and the row's raw mail holds the same bytes again, base64-encoded:
on the benchmark mix 90 % of the retained spool. `compact_processed` (every
minute, on the beat schedule) rewrites each processed row's raw mail without the
attachment bodies its messages stored, deflated (`inboxhub.lib.mail.compact_raw.pack`:
byte for byte, or not at all; the rest of the spool halves again); `original_raw`
gives the mail back as received, from the attachments' files. Rows waiting, being
processed or failed keep their mail as received: they are what the pipeline reads.
A run that left out VACUUM_AFTER_BYTES or more vacuums the spool's table, so the
mail as received leaves the disk then, not when autovacuum comes (if it is on).

An attachment's file is then the only copy of its bytes while the row is
retained: a row whose attachment is gone can no longer give its mail back
(`MailIncomplete`), never other bytes.
"""

import logging
from collections import defaultdict

from django.db import connection, transaction
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from inboxes.models import Attachment
from inboxhub.lib.mail.compact_raw import RestoreError, pack, unpack

logger = logging.getLogger(__name__)

COMPACT_BATCH = 200
# Once a run leaves out this much (a burst of attachments, or an upgrade's backlog) it gives the space back.
VACUUM_AFTER_BYTES = 8 * 1024 * 1024
State = InboundMessage.State


class MailIncomplete(Exception):
    """A compacted row whose attachment file is gone or changed: its mail cannot be given back."""


def compact_processed(*, batch: int = COMPACT_BATCH) -> int:
    """Compact the processed rows not looked at yet, `batch` at a time until none is left; how many."""
    looked_at = saved = 0
    while True:
        count, saved_in_batch = _compact_batch(batch)
        if not count:
            break
        looked_at, saved = looked_at + count, saved + saved_in_batch
    if saved >= VACUUM_AFTER_BYTES:
        _give_space_back()
    return looked_at


def _give_space_back() -> None:
    # The mail as received is dead once compacted, most of it in TOAST, which then holds nothing
    # alive: VACUUM cuts it off the table's end at once (autovacuum may be a minute away, or off),
    # and makes the rest reusable by the next mail. Cheap: pages already compacted are skipped.
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {InboundMessage._meta.db_table}")


def _compact_batch(batch: int) -> tuple[int, int]:
    """How many rows were looked at, and how many bytes of raw mail that left out."""
    # A sweep across accounts: each row is matched with its own messages' attachments only.
    with transaction.atomic(), scopes_disabled():
        # Locked, so a second sweep takes other rows; still processed, so a prune or retry lets go.
        rows = list(
            InboundMessage.objects.select_for_update(skip_locked=True)
            .filter(state=State.PROCESSED, raw_compacted__isnull=True)
            .order_by("pk")
            .only("pk", "raw")[:batch]
        )
        stored = defaultdict(set)
        for inbound_id, sha256 in Attachment.objects.filter(message__inbound__in=rows).values_list(
            "message__inbound_id", "sha256"
        ):
            stored[inbound_id].add(sha256)
        whole, saved = [], 0
        for row in rows:
            raw = bytes(row.raw)
            packed = _packed(row.pk, raw, stored[row.pk])
            if packed == raw:
                whole.append(row.pk)
            else:
                InboundMessage.objects.filter(pk=row.pk).update(raw=packed, raw_compacted=True)
                saved += len(raw) - len(packed)
        InboundMessage.objects.filter(pk__in=whole).update(raw_compacted=False)
    return len(rows), saved


def _packed(inbound_id: int, raw: bytes, stored: set[str]) -> bytes:
    try:
        return pack(raw, stored.__contains__)
    except Exception:
        # A bug here must not cost a byte: the row keeps its mail as received.
        logger.exception("inbound #%s: compacting its raw mail failed; kept as received", inbound_id)
        return raw


def _attachments_of(row: InboundMessage):
    return Attachment.objects.filter(message__inbound_id=row.pk)


def original_raw(row: InboundMessage) -> bytes:
    """The row's mail exactly as the ingress received it, compacted or not."""
    raw = bytes(row.raw)
    if not row.raw_compacted:
        return raw

    def load(sha256: str) -> bytes:
        attachment = _attachments_of(row).filter(sha256=sha256).first()
        if attachment is None:
            raise MailIncomplete(f"inbound #{row.pk}: the attachment {sha256} is no longer stored")
        with attachment.file.open("rb") as file:
            return file.read()

    with scopes_disabled():
        try:
            return unpack(raw, load)
        except RestoreError as exc:
            raise MailIncomplete(f"inbound #{row.pk}: its mail cannot be given back whole: {exc}") from exc
