"""Message.threading_note / attribution_note become `*_detail` fields on the same columns (issue 18):
stored only when they say more than the common case. State only: the columns keep their names."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("inboxes", "0020_ticket_priority_owner_events"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField("message", "threading_note", "threading_detail"),
                migrations.AlterField(
                    "message",
                    "threading_detail",
                    models.TextField(blank=True, db_column="threading_note"),
                ),
                migrations.RenameField("message", "attribution_note", "attribution_detail"),
                migrations.AlterField(
                    "message",
                    "attribution_detail",
                    models.TextField(blank=True, db_column="attribution_note"),
                ),
            ]
        ),
    ]
