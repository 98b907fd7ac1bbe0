"""Full-text search (issue 17): a tsvector per message, conversation and contact, kept by triggers.

PostgreSQL only: SQLite has no tsvector, and its search (inboxes/search.py) falls back to
`icontains`. The columns stay out of the models on purpose: every list and thread query would
otherwise read them, and a model field would need a type SQLite cannot create.

Triggers rather than STORED generated columns: a generated column forbids `ALTER COLUMN … TYPE` on
the columns it reads, which Django emits for something as plain as a new `max_length` on `subject`.
A trigger also fills rows written with COPY (bench/inbox.py) and by any writer that bypasses the ORM.

The text search configuration is `simple` (lower-case, no stemming, no stop words): mail is in
every language, and an English stemmer would mangle German or French words and drop "not" or "no".
Each vector reads at most the first 100,000 characters, so no message can exceed the 1 MB limit of a
tsvector and fail its insert.
"""

from django.db import migrations

# A message carries its own subject and sender too, so words spread over them and the text
# ("refund kettle": the subject says refund, the text kettle) still find it as one document.
FUNCTIONS = {
    "inboxes_message": (
        "setweight(to_tsvector('simple', left(NEW.subject, 2000) || ' ' || NEW.from_name || ' ' "
        "|| NEW.from_email || ' ' || replace(NEW.from_email, '@', ' ')), 'A') "
        "|| setweight(to_tsvector('simple', left(NEW.text, 100000)), 'B')"
    ),
    "inboxes_conversation": "setweight(to_tsvector('simple', left(NEW.subject, 100000)), 'A')",
    # The whole address, and its local part and domain apart, so `acme.example` finds everyone there.
    "inboxes_contact": (
        "setweight(to_tsvector('simple', "
        "NEW.name || ' ' || NEW.email || ' ' || replace(NEW.email, '@', ' ')), 'A')"
    ),
}
SOURCE_COLUMNS = {
    "inboxes_message": "subject, from_name, from_email, text",
    "inboxes_conversation": "subject",
    "inboxes_contact": "name, email",
}
# Multi-column GIN (btree_gin): the account's rows only, whatever the other tenants hold.
INDEXES = {
    "inboxes_message": "message_search",
    "inboxes_conversation": "conversation_search",
    "inboxes_contact": "contact_search",
}
# Newest first within an account: the search walks these when a word is in most messages (search.py).
RECENCY_INDEXES = [
    "CREATE INDEX message_account_recent ON inboxes_message (account_id, created_at DESC, id DESC)",
    "CREATE INDEX conversation_account_recent ON inboxes_conversation "
    "(account_id, last_message_at DESC, id DESC)",
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    execute = schema_editor.execute
    execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    for table, expression in FUNCTIONS.items():
        function = f"{table}_search_vector"
        execute(f"ALTER TABLE {table} ADD COLUMN search_vector tsvector")
        execute(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN NEW.search_vector := {expression}; RETURN NEW; END $$"
        )
        execute(
            f"CREATE TRIGGER {function} BEFORE INSERT OR UPDATE OF {SOURCE_COLUMNS[table]} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
        # Rows already there: the trigger computes their vector.
        first_column = SOURCE_COLUMNS[table].split(",")[0]
        execute(f"UPDATE {table} SET {first_column} = {first_column}")  # noqa: S608  constant names
        execute(f"CREATE INDEX {INDEXES[table]} ON {table} USING gin (account_id, search_vector)")
    for statement in RECENCY_INDEXES:
        execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    execute = schema_editor.execute
    execute("DROP INDEX IF EXISTS message_account_recent")
    execute("DROP INDEX IF EXISTS conversation_account_recent")
    for table in FUNCTIONS:
        function = f"{table}_search_vector"
        execute(f"DROP TRIGGER IF EXISTS {function} ON {table}")
        execute(f"DROP FUNCTION IF EXISTS {function}()")
        execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_vector")


class Migration(migrations.Migration):
    dependencies = [("inboxes", "0017_contact_merge")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
