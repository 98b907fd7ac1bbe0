"""The spool's raw mail compressed by PostgreSQL with lz4 instead of pglz (issue 18).

Every accepted mail over ~2 KB is compressed as the ingress commits it, before its 250: on the
issue's mix pglz took 0.89 ms of PostgreSQL's time a mail to insert, to save under 1 % (attachments
are base64, which neither shrinks); lz4 0.33 ms for the same size, reading back 0.03 ms slower.
Processed rows are deflated by the compaction (ingest.compaction), small enough to stay uncompressed
inline. Only values written from now on; other databases have no such option.
"""

from django.db import migrations

TABLE = "channels_conn_inboundmessage"
LZ4_BUILT_IN = "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"


def set_compression(method: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(LZ4_BUILT_IN)
            if cursor.fetchone() is None:  # a PostgreSQL built without lz4 keeps pglz
                return
        schema_editor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN raw SET COMPRESSION {method}")

    return run


class Migration(migrations.Migration):
    dependencies = [("channels_conn", "0006_compacted_raw")]

    operations = [migrations.RunPython(set_compression("lz4"), set_compression("pglz"))]
