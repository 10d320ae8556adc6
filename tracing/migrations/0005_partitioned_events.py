"""Trace events partitioned by receive time on PostgreSQL (tracing/partitions/); SQLite keeps
one table.

PostgreSQL: the event table becomes PARTITIONED BY RANGE (received_at) with its rows, ids and
index names kept; its primary key becomes (id, received_at), and the unique guarantee on
event_id moves to the event ledger, since a partitioned table's unique keys must include the
partition key (so no foreign key can point at the events: the dead letter's link loses its
database constraint on every backend). A trigger removes ledger rows with their events.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.migrations.exceptions import IrreversibleError

TABLE = "tracing_traceevent"
OLD = "tracing_traceevent_unpartitioned"
LEDGER = "tracing_eventledger"

FORGET_IDS = f"""
CREATE FUNCTION {LEDGER}_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {LEDGER} l USING gone WHERE l.event_id = gone.event_id;
    RETURN NULL;
END $$;
CREATE TRIGGER {TABLE}_forget_ids AFTER DELETE ON {TABLE}
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION {LEDGER}_forget();
"""


def partition_events(apps, schema_editor):
    from tracing.partitions.ensure import ensure_partitions

    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [TABLE])
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass",
            [TABLE],
        )
        constraints = cursor.fetchall()
        cursor.execute(f"SELECT pg_get_serial_sequence('{TABLE}', 'id')")
        cursor.execute(f"SELECT last_value, is_called FROM {cursor.fetchone()[0]}")
        last_id, id_used = cursor.fetchone()

        # The old table steps aside, bare, so that its index names pass to the new one.
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
        for name, kind, _ in constraints:
            if kind in ("p", "u", "f"):
                cursor.execute(f'ALTER TABLE {OLD} DROP CONSTRAINT "{name}"')
        owned = {name for name, kind, _ in constraints if kind in ("p", "u")}
        for name, _ in indexes:
            if name not in owned:
                cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(f"ALTER TABLE {OLD} ALTER COLUMN id DROP IDENTITY")

        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING STORAGE) "
            "PARTITION BY RANGE (received_at)"
        )
        cursor.execute(f"CREATE SEQUENCE {TABLE}_id_seq OWNED BY {TABLE}.id")
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{TABLE}_id_seq')")
        cursor.execute(f"SELECT setval('{TABLE}_id_seq', %s, %s)", [last_id, id_used])
        cursor.execute(f"SELECT min(received_at) FROM {OLD}")
        since = cursor.fetchone()[0]
    ensure_partitions(since=since)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")
        cursor.execute(f"DROP TABLE {OLD}")
        cursor.execute(f"ALTER TABLE {TABLE} ADD PRIMARY KEY (id, received_at)")
        for name, definition in indexes:
            # event_id lookups go through the ledger; the primary key is made above.
            if name not in owned and "(event_id" not in definition:
                cursor.execute(definition)
        for name, kind, definition in constraints:
            if kind == "f":
                cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
        cursor.execute(
            f"INSERT INTO {LEDGER} (event_id, received_at) SELECT event_id, received_at FROM {TABLE}"
        )
        cursor.execute(FORGET_IDS)


def keep_partitions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        raise IrreversibleError(
            "tracing.0005 does not turn partitioned events back into one table; restore a "
            "backup taken before it, or copy the events into an unpartitioned table by hand"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("tracing", "0004_dead_letter_ids_per_plant"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventLedger",
            fields=[
                ("event_id", models.CharField(max_length=128, primary_key=True, serialize=False)),
                ("received_at", models.DateTimeField(db_index=True)),
            ],
        ),
        migrations.AlterField(
            model_name="deadletter",
            name="event",
            field=models.OneToOneField(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="dead_letter",
                to="tracing.traceevent",
            ),
        ),
        migrations.RunPython(partition_events, keep_partitions),
    ]
