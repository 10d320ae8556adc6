"""Partitions created ahead of the events that will land in them (beat, hourly)."""

from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from tracing.partitions import periods, tables
from tracing.partitions.periods import DEFAULT_PARTITION, TABLE


@dataclass
class Created:
    partition: periods.Partition
    moved: int  # rows that had landed in the default partition meanwhile

    def __str__(self):
        moved = f", {self.moved:,} rows moved in from the default partition" if self.moved else ""
        return f"created {self.partition}{moved}"


def ensure_partitions(*, now=None, unit=None, since=None):
    """Create the partitions `periods.wanted` lists that do not exist yet, and the default one;
    return what was created. Rows that reached the default partition for a period (beat was
    late) move into its new partition. Nothing to do where events are not partitioned."""
    if not tables.is_partitioned():
        return []
    now = now or timezone.now()
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        tables.lock_partitions(cursor)
        if not tables.has_default():
            cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
        have = tables.existing()
        for period in periods.wanted(now, unit=unit, since=since):
            for partition in periods.uncovered(period, have):
                created.append(Created(partition, _create(cursor, partition)))
                have.append(partition)
    return created


def _create(cursor, partition):
    """Create one partition and attach it; return the rows moved in from the default one.

    CREATE TABLE … PARTITION OF would lock the whole event table; a new table attached
    afterwards only holds ingest back while the default partition is checked (it is small:
    the few old rows retention keeps, and what arrived while beat was late)."""
    start, end = tables.literal(partition.start), tables.literal(partition.end)
    cursor.execute(
        f"CREATE TABLE {partition.name} "
        f"(LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)"
    )
    columns = tables.columns()
    cursor.execute(
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
        f"WHERE received_at >= {start} AND received_at < {end} RETURNING {columns}) "
        f"INSERT INTO {partition.name} ({columns}) SELECT {columns} FROM moved"
    )
    moved = cursor.rowcount
    cursor.execute(
        f"ALTER TABLE {TABLE} ATTACH PARTITION {partition.name} "
        f"FOR VALUES FROM ({start}) TO ({end})"
    )
    return moved
