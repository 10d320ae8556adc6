"""What PostgreSQL holds of the event partitions, and the lock their changes take."""

from django.db import connection

from tracing.models import TraceEvent
from tracing.partitions.periods import DEFAULT_PARTITION, TABLE, Partition

# Creating and dropping partitions wait at most this long for a lock (a long report reading
# the events): past it the change is left for the next run rather than queueing ingest behind.
LOCK_TIMEOUT = "10s"


def is_partitioned():
    """True when the event table is partitioned (PostgreSQL after migration 0005)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def existing():
    """The range partitions of the event table, oldest first (the default one aside)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, bounds[1]::timestamptz, bounds[2]::timestamptz "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid, "
            "LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), "
            "  'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS bounds "
            "WHERE i.inhparent = to_regclass(%s) AND bounds IS NOT NULL ORDER BY 2",
            [TABLE],
        )
        return [Partition(name, start, end) for name, start, end in cursor.fetchall()]


def partition_spans():
    """The stretches of receive time the range partitions cover, adjacent ones merged; none
    where events are not partitioned."""
    if not is_partitioned():
        return []
    spans = []
    for partition in existing():
        if spans and spans[-1][1] == partition.start:
            spans[-1] = (spans[-1][0], partition.end)
        else:
            spans.append((partition.start, partition.end))
    return spans


def has_default():
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [DEFAULT_PARTITION])
        return cursor.fetchone()[0]


def lock_partitions(cursor):
    """Inside a transaction: one partition change at a time (beat, the command, retention),
    and no waiting past LOCK_TIMEOUT for the tables' locks."""
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{TABLE} partitions"])


def columns():
    """The event table's columns, quoted for SQL (one list for both sides of a copy)."""
    return ", ".join(f'"{f.column}"' for f in TraceEvent._meta.concrete_fields)


def literal(moment):
    """A bound for DDL, which takes no parameters (our own UTC datetimes only)."""
    return f"'{moment.isoformat()}'"
