"""A batch of queued mail delivered by three worker processes at once, in real parallel processes (issue 18).

A batch task run twice (a redelivery, the sweep's hand-off while a worker is
slow) must still send each mail once. Three processes take the same queued
mails, each in its own order and in batches of its own, released together
against a real SMTP server on loopback: each mail reaches the server once, by
the one process whose claim took it, and ends sent after one attempt.
"""

import json
import subprocess
import sys
from collections import Counter

import pytest
from django_scopes import scopes_disabled

from inboxhub.models import OutboundEmail
from tests.channels_conn.test_faults import BASE_DIR, child_env
from tests.factories import make_account
from tests.smarthost import smarthost

pytestmark = pytest.mark.xdist_group("processes")

MAILS = 60
PROCESSES = 3
BATCH = 7  # not a divisor of MAILS: the processes' batches overlap unevenly

# Each process shuffles the ids and delivers them in batches of BATCH, as tasks of overlapping batches
# would; the database connection is opened before the barrier, so the claims start together.
DELIVERER = """
import json, os, random, sys, time
from pathlib import Path
import django
django.setup()
from django.db import connection
from inboxhub.outbound import deliver_batch
account_id, barrier, parties, batch = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ids = [int(pk) for pk in sys.argv[5].split(",")]
random.shuffle(ids)
connection.ensure_connection()
(barrier / str(os.getpid())).touch()
deadline = time.monotonic() + 60
while len(list(barrier.iterdir())) < parties:
    assert time.monotonic() < deadline, "the other processes did not start"
    time.sleep(0.002)
ended = {}
for start in range(0, len(ids), batch):
    for state, count in deliver_batch(ids[start : start + batch], account_id=account_id).items():
        ended[state] = ended.get(state, 0) + count
print(json.dumps(ended))
"""


def start(script: str, *args, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=BASE_DIR,
        env=child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_three_workers_delivering_the_same_mails_at_once_send_each_once(transactional_db, settings, tmp_path):
    admin = make_account("alpha")
    with scopes_disabled():
        mails = OutboundEmail.objects.bulk_create(
            OutboundEmail(
                account=admin.account,
                kind=OutboundEmail.Kind.ASSIGNMENT_NOTIFICATION,
                to=f"agent{n}@alpha.example",
                subject=f"Assigned to you: Order {n}",
                body=f"Order {n} is yours.",
            )
            for n in range(MAILS)
        )
    ids = ",".join(str(mail.pk) for mail in mails)
    barrier = tmp_path / "barrier"
    barrier.mkdir()

    with smarthost(settings) as server:
        smtp = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(settings.EMAIL_PORT)}
        processes = [
            start(DELIVERER, admin.account_id, barrier, PROCESSES, BATCH, ids, **smtp)
            for _ in range(PROCESSES)
        ]
        ended = []
        for process in processes:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            ended.append(json.loads(out.strip().splitlines()[-1]))

    received = Counter(rcpt for rcpt_tos, _ in server.messages for rcpt in rcpt_tos)
    assert received == {f"agent{n}@alpha.example": 1 for n in range(MAILS)}
    assert sum(counts.get("sent", 0) for counts in ended) == MAILS
    assert {state for counts in ended for state in counts} == {"sent"}
    with scopes_disabled():
        rows = list(OutboundEmail.objects.filter(pk__in=[mail.pk for mail in mails]))
    assert Counter((row.state, row.attempts, row.error) for row in rows) == {("sent", 1, ""): MAILS}
