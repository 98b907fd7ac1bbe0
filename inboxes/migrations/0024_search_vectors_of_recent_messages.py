"""A message keeps its stored search vector only while it is recent (issue 18 point 4).

Migration 0018 stored a tsvector on every message: on the list benchmark (300,000 messages) 554 of a
row's 982 bytes, more than the text it is made of. Searches need it where they read many rows: the
newest messages, which a common word walks until it has its candidates, and the candidates' rank.
Older messages are reached through the GIN index, which holds their words either way, and are few
per search; for them the vector is computed again from the row.

The index now holds `COALESCE(search_vector, document)`: the stored vector while there is one, the
same document computed from the row once `inboxes.search.forget_old_vectors` (hourly) has set it to
null. The trigger still fills the column on every insert and on every change of the text, so a new
or edited message is found and ranked without computing anything. `message_search_vector_recent`
finds the vectors to forget.

Existing rows are not rewritten here: the hourly task forgets their vectors in batches (275,000 in
21 s on the list benchmark). Each is an update, a new version of the row: until `VACUUM FULL
inboxes_message` (or pg_repack, without its long lock) rewrites the table, the database first grows
by the old versions (440 -> 618 MB there; 277 MB after VACUUM FULL), which new messages then reuse.
"""

from django.db import migrations

# The document of migration 0018, as an expression of the row; inboxes/search.py (MESSAGE_DOCUMENT)
# writes exactly this, so that PostgreSQL matches the index.
DOCUMENT = (
    "setweight(to_tsvector('simple'::regconfig, left(subject, 2000) || ' ' || from_name || ' ' "
    "|| from_email || ' ' || replace(from_email, '@', ' ')), 'A') "
    "|| setweight(to_tsvector('simple'::regconfig, left(text, 100000)), 'B')"
)
PENDING_LIST_KB = 256  # as migration 0023 set it


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    execute = schema_editor.execute
    execute("DROP INDEX IF EXISTS message_search")
    execute(
        f"CREATE INDEX message_search ON inboxes_message USING gin "
        f"(account_id, (COALESCE(search_vector, {DOCUMENT}))) "
        f"WITH (gin_pending_list_limit = {PENDING_LIST_KB})"
    )
    execute(
        "CREATE INDEX message_search_vector_recent ON inboxes_message (created_at) "
        "WHERE search_vector IS NOT NULL"
    )
    # PostgreSQL counts the document as costly on every row, and would walk the newest messages with
    # parallel workers, which run ahead into old rows and compute their documents for nothing (a
    # word in one message of forty: 12 ms alone, 200-400 ms in parallel on the list benchmark).
    execute("ALTER TABLE inboxes_message SET (parallel_workers = 0)")


def backwards(apps, schema_editor):
    """Every message's vector stored again, and the index of migration 0018 on it."""
    if schema_editor.connection.vendor != "postgresql":
        return
    execute = schema_editor.execute
    execute("ALTER TABLE inboxes_message RESET (parallel_workers)")
    execute("DROP INDEX IF EXISTS message_search_vector_recent")
    execute("DROP INDEX IF EXISTS message_search")
    execute(f"UPDATE inboxes_message SET search_vector = {DOCUMENT} WHERE search_vector IS NULL")  # noqa: S608
    execute(
        f"CREATE INDEX message_search ON inboxes_message USING gin (account_id, search_vector) "
        f"WITH (gin_pending_list_limit = {PENDING_LIST_KB})"
    )


class Migration(migrations.Migration):
    dependencies = [("inboxes", "0023_lean_search_and_list_indexes")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
