"""Foreign keys without an index of their own where another index serves them (issue 18 point 4).

The account's: every index of messages and conversations starts with it. A spool row's, a sender's
and a claimed member's: only rows that name one are indexed (`message_inbound`, `message_sent_by`,
`message_claimed_member`), which is what pruning the spool and removing a member look up. On the
list benchmark (300,000 messages) the five single-column indexes took 8.5 MB.

Only the indexes change: the constraints stay as they are (Django's own AlterField would drop and
validate each foreign key again, a scan of the table each).
"""

import django.db.models.deletion
from django.db import migrations, models

# Django's names for the foreign keys' own indexes.
DROPPED = [
    ("inboxes_conversation_account_id_785cf8aa", "inboxes_conversation", "account_id"),
    ("inboxes_message_account_id_75f494e0", "inboxes_message", "account_id"),
    ("inboxes_message_claimed_member_id_c05ecaaf", "inboxes_message", "claimed_member_id"),
    ("inboxes_message_inbound_id_56fa87c9", "inboxes_message", "inbound_id"),
    ("inboxes_message_sent_by_id_b9cd0ff4", "inboxes_message", "sent_by_id"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("channels_conn", "0005_add_inbound_account"),
        ("inboxes", "0021_compact_provenance_notes"),
        ("inboxhub", "0008_signup_attempt"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="conversation",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="conversations",
                        to="inboxhub.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="inboxhub.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="claimed_member",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="inboxhub.membership",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="inbound",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="channels_conn.inboundmessage",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="sent_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="sent_messages",
                        to="inboxhub.membership",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"', f'CREATE INDEX "{name}" ON "{table}" ("{column}")'
                )
                for name, table, column in DROPPED
            ],
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("inbound__isnull", False)), fields=["inbound"], name="message_inbound"
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("sent_by__isnull", False)), fields=["sent_by"], name="message_sent_by"
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("claimed_member__isnull", False)),
                fields=["claimed_member"],
                name="message_claimed_member",
            ),
        ),
    ]
