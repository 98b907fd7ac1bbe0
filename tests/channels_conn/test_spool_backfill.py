"""The migration that keys the spool by account: old rows get their account, a two-account row splits (A2)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("channels_conn", "0004_add_fallback_sending_settings")]
AFTER = [("channels_conn", "0005_add_inbound_account")]
RAW = b"From: carol@customer.example\r\nSubject: Hi\r\n\r\nHello\r\n"


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_spool(transactional_db):
    apps = migrate(BEFORE)
    yield apps
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def fallback_address(apps, subdomain: str) -> str:
    account = apps.get_model("inboxhub", "Account").objects.create(
        subdomain=subdomain, company_name=subdomain
    )
    inbox = apps.get_model("inboxes", "Inbox").objects.create(account=account, name="Inbox", is_default=True)
    channel = apps.get_model("channels_conn", "Channel").objects.create(
        account=account, inbox=inbox, kind="fallback_email"
    )
    address = f"support@{subdomain}.inbox.localhost"
    apps.get_model("channels_conn", "FallbackAddress").objects.create(
        account=account, channel=channel, local_part="support", address=address
    )
    return address


def test_old_rows_get_their_account_and_a_row_for_two_accounts_becomes_two(old_spool):
    ours, theirs = fallback_address(old_spool, "alpha"), fallback_address(old_spool, "bravo")
    spool = old_spool.get_model("channels_conn", "InboundMessage").objects
    single = spool.create(raw=RAW, size=len(RAW), rcpt_tos=[ours.replace("support@", "Support+c1x0@")])
    both = spool.create(raw=RAW, size=len(RAW), rcpt_tos=[ours, theirs], state="processed", attempts=1)
    gone = spool.create(raw=RAW, size=len(RAW), rcpt_tos=["old@nowhere.inbox.localhost"], state="failed")

    apps = migrate(AFTER)

    Account = apps.get_model("inboxhub", "Account")
    alpha, bravo = Account.objects.get(subdomain="alpha"), Account.objects.get(subdomain="bravo")
    rows = apps.get_model("channels_conn", "InboundMessage").objects.order_by("pk")
    assert [(row.pk, row.account_id, row.rcpt_tos, row.state) for row in rows] == [
        (single.pk, alpha.pk, [ours.replace("support@", "Support+c1x0@")], "received"),
        (both.pk, alpha.pk, [ours], "processed"),
        (gone.pk, None, ["old@nowhere.inbox.localhost"], "failed"),
        (rows.last().pk, bravo.pk, [theirs], "processed"),
    ]
    assert bytes(rows.last().raw) == RAW
