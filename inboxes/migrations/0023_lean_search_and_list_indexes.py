"""Smaller search and list indexes on the same rows (issue 18 point 4).

`conversation_inbox_recent` (an inbox's conversations, newest first) served no query since every list
names a status (`conversation_inbox_status`): on the list benchmark it was never scanned, 8.6 MB.

The GIN indexes of search (migration 0018) take new rows into a pending list first, up to
`gin_pending_list_limit` (4 MB by default), then merge them; each index keeps pages of that size
that only VACUUM hands back, and a search reads the whole unsorted list. A limit of 256 kB merges
more often, in smaller steps, for the same work.
"""

from django.db import migrations

GIN_INDEXES = ("message_search", "conversation_search", "contact_search")
PENDING_LIST_KB = 256


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index in GIN_INDEXES:
        schema_editor.execute(f"ALTER INDEX {index} SET (gin_pending_list_limit = {PENDING_LIST_KB})")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index in GIN_INDEXES:
        schema_editor.execute(f"ALTER INDEX {index} RESET (gin_pending_list_limit)")


class Migration(migrations.Migration):
    dependencies = [("inboxes", "0022_lean_foreign_key_indexes")]

    operations = [
        migrations.RemoveIndex(model_name="conversation", name="conversation_inbox_recent"),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
