"""A contact merge while mail for the merged address is being logged, in real parallel processes (H6).

Two worker processes log 150 new conversations from carol.work@ while two more
processes merge that contact into Carol at once (a double submit): every
message is logged, each to Carol, none fails, no new contact of the merged
address appears, and the merge happens once.
"""

import subprocess
import sys

import pytest
from django_scopes import scopes_disabled

from channels_conn.models import InboundMessage
from inboxes.models import Contact, ContactMerge, Conversation, Message
from tests.channels_conn.test_faults import BASE_DIR, child_env
from tests.factories import make_account

pytestmark = pytest.mark.xdist_group("processes")

MESSAGES = 150
MERGE_AFTER = 30
WORK = "carol.work@bigcorp.example"

WORKER = """
import sys, django
django.setup()
from ingest.pipeline import process_inbound_message
outcomes = [process_inbound_message(int(pk)) for pk in sys.argv[1].split(",")]
print(outcomes.count("processed"))
"""

MERGER = """
import os, sys, time, django
django.setup()
from django.core.exceptions import ValidationError
from django_scopes import scope, scopes_disabled
from channels_conn.models import InboundMessage
from inboxes.contact_merge import merge_contacts
from inboxes.models import Contact
from inboxhub.models import Membership
from pathlib import Path
kept, other, admin, after = (int(arg) for arg in sys.argv[1:5])
barrier = Path(sys.argv[5])
with scopes_disabled():
    # Both submits hold the contacts before either merges, as two open tabs do.
    admin = Membership.objects.select_related("account", "user").get(pk=admin)
    kept, other = Contact.objects.get(pk=kept), Contact.objects.get(pk=other)
    (barrier / str(os.getpid())).touch()
    while len(list(barrier.iterdir())) < 2:
        time.sleep(0.01)
    while InboundMessage.objects.filter(state=InboundMessage.State.PROCESSED).count() < after:
        time.sleep(0.01)
with scope(account=admin.account):
    try:
        merge_contacts(kept, other, by=admin)
        print("merged")
    except ValidationError as refused:
        print("refused:", refused.messages[0])
"""


def run(script: str, *args) -> subprocess.Popen:
    # Mail from 127.0.0.1 on a trusted network: authenticated without any DNS lookup (G8).
    env = child_env(TRUSTED_NETWORKS="127.0.0.0/8")
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_mail_for_the_merged_address_logged_during_the_merge_all_lands_on_the_kept_contact(
    transactional_db, tmp_path
):
    admin = make_account("alpha")
    with scopes_disabled():
        account = admin.account
        inbox = account.inboxes.get(is_default=True)
        address = inbox.channels.get().fallback_address.address
        carol = Contact.objects.create(account=account, email="carol@customer.example", name="Carol")
        work = Contact.objects.create(account=account, email=WORK, name="Carol at work")
        for contact in (carol, work):
            Conversation.objects.create(account=account, inbox=inbox, contact=contact, subject="Before")
        rows = InboundMessage.objects.bulk_create(
            InboundMessage(
                account=account,
                raw=(
                    raw := f"From: Carol <{WORK}>\r\nTo: {address}\r\nSubject: Order {n}\r\n"
                    f"Message-ID: <order-{n}@bigcorp.example>\r\n\r\nWhere is order {n}?\r\n".encode()
                ),
                size=len(raw),
                mail_from=WORK,
                rcpt_tos=[address],
                peer_ip="127.0.0.1",
            )
            for n in range(MESSAGES)
        )
    ids = [row.pk for row in rows]

    processes = [
        run(WORKER, ",".join(map(str, ids[0::2]))),
        run(WORKER, ",".join(map(str, ids[1::2]))),
        *(run(MERGER, carol.pk, work.pk, admin.pk, MERGE_AFTER, tmp_path) for _ in range(2)),
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
        outputs.append(out.strip().splitlines()[-1])

    assert [int(n) for n in outputs[:2]] == [MESSAGES // 2, MESSAGES // 2]
    assert sorted(outputs[2:]) == ["merged", f"refused: {work} was already merged into another contact."]
    with scopes_disabled():
        assert InboundMessage.objects.filter(state=InboundMessage.State.PROCESSED).count() == MESSAGES
        assert set(Conversation.objects.filter(inbox=inbox).values_list("contact_id", flat=True)) == {
            carol.pk
        }
        assert Conversation.objects.filter(inbox=inbox).count() == MESSAGES + 2
        assert not Contact.objects.filter(email__iexact=WORK).exists()
        [merge] = ContactMerge.objects.filter(contact=carol)
        # The merge ran while mail was being logged: some conversations moved, some came after it.
        assert MERGE_AFTER + 1 <= merge.conversations < MESSAGES + 1
        assert Message.objects.filter(inbox=inbox, created_at__gt=merge.created_at).exists()
        assert not Message.objects.filter(sender_role=Message.SenderRole.DIFFERENT_SENDER).exists()
