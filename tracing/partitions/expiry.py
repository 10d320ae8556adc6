"""Expired partitions dropped whole: no row-by-row delete, no bloat left for vacuum."""

import time

from django.db import OperationalError, connection, transaction

from tracing.models import EventLedger, TraceEvent
from tracing.partitions import tables
from tracing.partitions.periods import TABLE


def drop_partitions_before(before, *, keep, dry_run=False, note=None):
    """Drop every partition whose whole range lies before `before`; return the rows dropped.

    `keep(events)` narrows an event queryset to the rows that must stay whatever their age:
    those are moved to the default partition first (where the batched purge judges them later),
    so nothing that points at an event loses it. Each partition goes in its own transaction,
    with the ledger rows of its events. A dry run only counts and reports. None drops nothing.
    """
    if before is None or not tables.is_partitioned():
        return 0
    expired = [p for p in tables.existing() if p.end <= before]
    note = note or (lambda text: None)
    dropped = 0
    for number, partition in enumerate(expired, 1):
        prefix = f"[{number}/{len(expired)}] "
        if dry_run:
            rows, kept = _count(partition, keep)
            dropped += rows - kept
            note(f"{prefix}would drop partition {partition}: {rows:,} rows, {kept:,} kept")
            continue
        started = time.monotonic()
        try:
            rows, kept = _drop(partition, keep)
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_timeout
                raise
            note(f"{prefix}{partition.name} is busy (lock timeout); left for the next run")
            continue
        dropped += rows - kept
        aside = " (moved to the default partition)" if kept else ""
        note(
            f"{prefix}dropped partition {partition}: {rows - kept:,} rows, {kept:,} kept{aside} "
            f"in {time.monotonic() - started:.2f} s"
        )
    return dropped


def _staying(partition, keep):
    """SQL and parameters selecting the ids of the partition's rows that must stay."""
    events = TraceEvent.objects.filter(
        received_at__gte=partition.start, received_at__lt=partition.end
    )
    return keep(events).values("pk").query.sql_with_params()


def _count(partition, keep):
    sql, params = _staying(partition, keep)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), count(*) FILTER (WHERE id IN ({sql})) FROM {partition.name}",
            params,
        )
        return cursor.fetchone()


def _drop(partition, keep):
    """Copy aside what stays, forget the ledger rows of what goes, drop, put back what stays.
    The event table is locked (by the DROP) only for the last two steps."""
    columns, ledger = tables.columns(), EventLedger._meta.db_table
    sql, params = _staying(partition, keep)
    with transaction.atomic(), connection.cursor() as cursor:
        tables.lock_partitions(cursor)
        cursor.execute(
            f"CREATE TEMP TABLE partition_kept AS "
            f"SELECT {columns} FROM {partition.name} WHERE id IN ({sql})",
            params,
        )
        kept = cursor.rowcount
        cursor.execute(f"SELECT count(*) FROM {partition.name}")
        rows = cursor.fetchone()[0]
        cursor.execute(
            f"DELETE FROM {ledger} WHERE received_at >= %s AND received_at < %s "
            "AND event_id NOT IN (SELECT event_id FROM partition_kept)",
            [partition.start, partition.end],
        )
        cursor.execute(f"DROP TABLE {partition.name}")
        cursor.execute(f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM partition_kept")
        cursor.execute("DROP TABLE partition_kept")
    return rows, kept
