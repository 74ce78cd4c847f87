"""Makes the bars table a TimescaleDB hypertable when the extension is available.

Detected at migration time: on PostgreSQL with ``timescaledb`` in ``pg_available_extensions`` the
extension is created, the primary key is widened to (id, ts) — TimescaleDB requires every unique
index of a hypertable to include its time column; the (dataset, instrument, ts) unique constraint
already does — and ``create_hypertable`` partitions the table by ``ts`` (7-day chunks, existing
rows migrated). Anywhere else (SQLite, PostgreSQL without TimescaleDB) the table stays a plain
table indexed by its (dataset, instrument, ts) unique constraint, and this migration does nothing.
"""

from django.db import migrations

TABLE = "trading_bar"


def to_hypertable(apps, schema_editor):
    conn = schema_editor.connection
    if conn.vendor != "postgresql":
        return
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        if cur.fetchone() is None:
            return
        cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        cur.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass "
                    "AND contype = 'p'", [TABLE])
        (pkey,) = cur.fetchone()
        cur.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{pkey}"')
        cur.execute(f"ALTER TABLE {TABLE} ADD PRIMARY KEY (id, ts)")
        cur.execute("SELECT create_hypertable(%s, 'ts', chunk_time_interval => INTERVAL '7 days', "
                    "migrate_data => true, if_not_exists => true)", [TABLE])


class Migration(migrations.Migration):
    dependencies = [("trading", "0001_initial")]

    operations = [migrations.RunPython(to_hypertable, migrations.RunPython.noop)]
