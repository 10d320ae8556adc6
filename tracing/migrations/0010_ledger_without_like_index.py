"""The event ledger is only ever looked up by whole event_id (ingest's ON CONFLICT, retention):
drop the varchar_pattern_ops index PostgreSQL gets for a CharField key, one index write fewer
per stored event."""

from django.db import migrations


def _like_index(schema_editor):
    return schema_editor._create_index_name("tracing_eventledger", ["event_id"], suffix="_like")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {_like_index(schema_editor)}")


def restore(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {_like_index(schema_editor)} "
            "ON tracing_eventledger (event_id varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("tracing", "0009_lighter_writes")]

    operations = [migrations.RunPython(drop, restore, elidable=False)]
