"""Two compactions of the spool at once, in real parallel processes (issue 18).

The beat schedule can start a compaction while the last is still running (a
burst, a slow disk), and two workers can each pick one up. Both go over the
same processed rows, released together, a few rows at a time, and each gives
the space back with a VACUUM at its end: neither fails, each row is compacted
by one of them only, and every row still gives its mail back byte for byte.
"""

import os
import subprocess
import sys
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from ingest.compaction import original_raw
from ingest.pipeline import process_inbound_message
from tests.channels_conn.test_faults import BASE_DIR, child_env
from tests.factories import make_account
from tests.inboxes.helpers import address_of, default_inbox, raw_mail, spool

pytestmark = pytest.mark.xdist_group("processes")

State = InboundMessage.State
MAILS = 40
PROCESSES = 2
BATCH = 3  # a few rows a turn, so the two runs take turns many times

COMPACTOR = """
import os, sys, time
from pathlib import Path
import django
django.setup()
from django.db import connection
from ingest import compaction
barrier, parties, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
compaction.VACUUM_AFTER_BYTES = 1  # each run gives the space back, so the VACUUMs meet the other run too
connection.ensure_connection()
(barrier / str(os.getpid())).touch()
deadline = time.monotonic() + 60
while len(list(barrier.iterdir())) < parties:
    assert time.monotonic() < deadline, "the other process did not start"
    time.sleep(0.002)
print(compaction.compact_processed(batch=batch))
"""


def mail_with_pdf(to: str, n: int) -> bytes:
    mail = EmailMessage(policy=SMTP)
    mail["From"] = "Carol Customer <carol@customer.example>"
    mail["To"] = to
    mail["Subject"] = f"The invoice {n}"
    mail["Message-ID"] = f"<pdf{n}@customer.example>"
    mail.set_content(f"Please find invoice {n} attached.\n")
    pdf = b"%PDF-1.4\n" + os.urandom(20_000)
    mail.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"invoice-{n}.pdf")
    return mail.as_bytes()


def plain_mail(to: str, n: int) -> bytes:
    body = f"Where is order {n}? It has not come.\n" * 30
    return raw_mail(to=to, message_id=f"<text{n}@customer.example>", body=body)


def start(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=BASE_DIR,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_compactions_at_once_compact_each_row_once_and_every_mail_comes_back_whole(
    transactional_db, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    to = address_of(default_inbox(make_account("alpha").account))
    received = {}
    for n in range(MAILS):
        # Half with an attachment its message stores (left out), half plain text (deflated).
        raw = mail_with_pdf(to, n) if n % 2 else plain_mail(to, n)
        row = spool(raw, to)
        assert process_inbound_message(row.pk) == State.PROCESSED
        received[row.pk] = raw
    barrier = tmp_path / "barrier"
    barrier.mkdir()

    processes = [start(COMPACTOR, barrier, PROCESSES, BATCH) for _ in range(PROCESSES)]
    looked_at = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        looked_at.append(int(out.strip().splitlines()[-1]))

    assert sum(looked_at) == MAILS  # each row by one of the two
    with scopes_disabled():
        rows = list(InboundMessage.objects.filter(pk__in=received))
    assert sorted(row.raw_compacted for row in rows) == [True] * MAILS
    assert {row.pk: original_raw(row) for row in rows} == received
