"""Processed mail kept without the attachment bytes its messages store, and given back whole (issue 18)."""

import io
import json
import os
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from inboxes.models import Attachment
from inboxhub.lib.mail.compact_raw import compact
from ingest import compaction
from ingest.compaction import MailIncomplete, compact_processed, original_raw
from ingest.pipeline import process_inbound_message
from ingest.tasks import compact_spool_task
from tests.inboxes.helpers import address_of, default_inbox, raw_mail, spool

pytestmark = pytest.mark.django_db
State = InboundMessage.State
PDF = b"%PDF-1.4\n" + os.urandom(30_000)


@pytest.fixture
def inbox(admin, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return default_inbox(admin.account)


def mail_with_pdf(to: str, n: int = 1) -> bytes:
    mail = EmailMessage(policy=SMTP)
    mail["From"] = "Carol Customer <carol@customer.example>"
    mail["To"] = to
    mail["Subject"] = f"The invoice {n}"
    mail["Message-ID"] = f"<pdf{n}@customer.example>"
    mail.set_content("Please find the invoice attached.\n")
    mail.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    return mail.as_bytes()


def processed(inbox, raw: bytes) -> InboundMessage:
    to = address_of(inbox)
    row = spool(raw, to)
    assert process_inbound_message(row.pk) == State.PROCESSED
    return row


def reloaded(row: InboundMessage) -> InboundMessage:
    return InboundMessage.objects.get(pk=row.pk)


def test_processed_mail_is_kept_small_and_gives_the_attachment_back_byte_for_byte(inbox):
    raw = mail_with_pdf(address_of(inbox))
    row = processed(inbox, raw)

    assert compact_spool_task.apply().result == 1

    row = reloaded(row)
    assert row.raw_compacted is True
    assert len(bytes(row.raw)) < len(raw) // 10  # the PDF was nine tenths of it
    assert original_raw(row) == raw
    assert row.size == len(raw)


def test_the_original_is_written_out_for_inspect_email(inbox):
    raw = mail_with_pdf(address_of(inbox))
    row = processed(inbox, raw)
    compact_processed()
    out = io.BytesIO()
    out.buffer = out  # what call_command's stdout wrapper hands on for bytes

    call_command("spooled_mail", str(row.pk), stdout=out)

    assert out.getvalue() == raw


def test_mail_without_attachments_is_deflated_and_looked_at_once(inbox):
    raw = raw_mail(to=address_of(inbox), body="Hello, my order has not arrived. Could you check it?\n" * 20)
    row = processed(inbox, raw)

    assert compact_processed() == 1
    assert compact_processed() == 0

    row = reloaded(row)
    assert row.raw_compacted is True and len(bytes(row.raw)) < len(raw) // 2
    assert original_raw(row) == raw


def test_mail_that_would_not_shrink_is_kept_as_received(inbox):
    mail = raw_mail(to=address_of(inbox), body="").replace(b"utf-8", b"iso-8859-1")
    raw = mail + os.urandom(4_000)  # 8-bit noise, as some mailers send binary text
    row = processed(inbox, raw)

    assert compact_processed() == 1

    row = reloaded(row)
    assert row.raw_compacted is False and bytes(row.raw) == raw and original_raw(row) == raw


def test_a_row_compacted_before_packing_existed_still_gives_its_mail_back(inbox):
    raw = mail_with_pdf(address_of(inbox))
    row = processed(inbox, raw)
    with scopes_disabled():
        (sha256,) = Attachment.objects.values_list("sha256", flat=True)
    InboundMessage.objects.filter(pk=row.pk).update(
        raw=compact(raw, {sha256}.__contains__), raw_compacted=True
    )

    assert original_raw(reloaded(row)) == raw


def test_a_damaged_row_says_so_and_never_gives_other_bytes(inbox):
    row = processed(inbox, raw_mail(to=address_of(inbox), body="Where is my parcel? " * 50))
    compact_processed()
    damaged = bytes(reloaded(row).raw)[:-1]
    InboundMessage.objects.filter(pk=row.pk).update(raw=damaged)

    with pytest.raises(MailIncomplete, match="cannot be given back whole"):
        original_raw(reloaded(row))


def test_failed_and_waiting_mail_is_never_compacted(inbox):
    to = address_of(inbox)
    waiting = spool(mail_with_pdf(to, 1), to)
    failed = spool(mail_with_pdf(to, 2), to, state=State.FAILED)

    assert compact_processed() == 0
    assert reloaded(waiting).raw_compacted is None and reloaded(failed).raw_compacted is None
    # Once processed, a row waiting before is compacted like the rest.
    assert process_inbound_message(waiting.pk) == State.PROCESSED
    assert compact_processed() == 1 and reloaded(waiting).raw_compacted is True


def test_a_message_forging_the_compaction_line_comes_back_unchanged(inbox):
    to = address_of(inbox)
    forged = b'X-InboxHub-Compacted: 1 {"parts": [], "size": 0, "sha256": ""}\r\n' + mail_with_pdf(to)
    row = processed(inbox, forged)

    compact_processed()

    assert original_raw(reloaded(row)) == forged


def test_a_row_whose_attachment_is_gone_says_so_and_never_gives_other_bytes(inbox):
    row = processed(inbox, mail_with_pdf(address_of(inbox)))
    compact_processed()
    with scopes_disabled():
        Attachment.objects.all().delete()

    with pytest.raises(MailIncomplete, match="cannot be given back whole"):
        original_raw(reloaded(row))
    with pytest.raises(CommandError, match=f"inbound #{row.pk}"):
        call_command("spooled_mail", str(row.pk), stdout=io.BytesIO())


def test_an_unknown_row_is_one_clear_error():
    with pytest.raises(CommandError, match="No spooled message #999999"):
        call_command("spooled_mail", "999999", stdout=io.BytesIO())


def test_storage_reports_the_spool_as_received_and_as_kept(admin, inbox):
    raw = mail_with_pdf(address_of(inbox))
    processed(inbox, raw)
    compact_processed()
    out = io.StringIO()

    call_command("storage", "--json", stdout=out)

    accounts = json.loads(out.getvalue())["accounts"]
    (row,) = [row for row in accounts if row["account"] == admin.account.subdomain]
    assert row["spool_bytes"] == len(raw)
    assert 0 < row["spool_kept_bytes"] < len(raw) // 10


def spool_toast_bytes() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE relname = %s",
            [InboundMessage._meta.db_table],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_after_a_big_batch_the_mail_as_received_is_given_back_to_the_disk(inbox, monkeypatch):
    monkeypatch.setattr(compaction, "VACUUM_AFTER_BYTES", 2 * len(PDF))  # two mails' attachments
    for n in (1, 2):
        processed(inbox, mail_with_pdf(address_of(inbox), n))
    assert spool_toast_bytes() > 2 * len(PDF)

    assert compact_processed() == 2

    assert spool_toast_bytes() == 0  # the PDFs' base64 is gone from the spool's TOAST, not only dead
