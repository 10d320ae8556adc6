"""Event partitions on PostgreSQL: created ahead, rows in the right one, the default partition
as a safety net, beat's hourly entry; SQLite keeps one table."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from tests.conftest import uses_postgres
from tests.events import event
from tracing.ingest.pipeline import ingest_events
from tracing.models import EventLedger, TraceEvent
from tracing.partitions import tables
from tracing.partitions.ensure import ensure_partitions
from tracing.partitions.expiry import drop_partitions_before

pytestmark = pytest.mark.django_db
MARCH_10 = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def partition_of(event_id):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM tracing_traceevent WHERE event_id = %s",
            [event_id],
        )
        return cursor.fetchone()[0]


def ingest_at(now, **fields):
    result = ingest_events([event(at=now - timedelta(minutes=1), **fields)], now=now)
    assert result.accepted == 1, result.rejected


@pytest.mark.postgres
@pytest.mark.parametrize(
    "unit, first, last",
    [
        ("day", "p20260309 (2026-03-09 to 2026-03-10)", "p20260317 (2026-03-17 to 2026-03-18)"),
        ("week", "p20260302 (2026-03-02 to 2026-03-09)", "p20260323 (2026-03-23 to 2026-03-30)"),
        ("month", "p20260201 (2026-02-01 to 2026-03-01)", "p20260501 (2026-05-01 to 2026-06-01)"),
    ],
)
def test_partitions_are_created_ahead_with_their_names_and_ranges(p100, unit, first, last):
    created = ensure_partitions(now=MARCH_10, unit=unit)
    made = [str(c.partition).removeprefix("tracing_traceevent_") for c in created]
    assert made[0] == first and made[-1] == last
    assert len(made) == {"day": 9, "week": 4, "month": 4}[unit]
    existing = {p.name: (p.start, p.end) for p in tables.existing()}
    assert all(existing[c.partition.name] == (c.partition.start, c.partition.end) for c in created)
    assert ensure_partitions(now=MARCH_10, unit=unit) == []  # nothing twice


@pytest.mark.postgres
def test_an_event_lands_in_the_partition_of_its_receive_time(p100):
    ensure_partitions(now=MARCH_10, unit="day")
    ingest_at(MARCH_10, event_id="march-10")
    ingest_at(MARCH_10 + timedelta(days=3), event_id="march-13")
    assert partition_of("march-10") == "tracing_traceevent_p20260310"
    assert partition_of("march-13") == "tracing_traceevent_p20260313"
    assert EventLedger.objects.get(event_id="march-13").received_at == MARCH_10 + timedelta(days=3)


@pytest.mark.postgres
def test_an_event_beyond_every_partition_is_kept_by_the_default_one_until_its_partition_exists(
    p100,
):
    late = MARCH_10 + timedelta(days=40)
    ingest_at(late, event_id="beat-was-late")
    assert partition_of("beat-was-late") == "tracing_traceevent_default"
    created = ensure_partitions(now=late, unit="day")
    (moved,) = [c for c in created if c.moved]
    assert (moved.partition.name, moved.moved) == ("tracing_traceevent_p20260419", 1)
    assert "1 rows moved in from the default partition" in str(moved)
    assert partition_of("beat-was-late") == "tracing_traceevent_p20260419"
    assert TraceEvent.objects.get(event_id="beat-was-late").received_at == late


@pytest.mark.postgres
def test_the_command_prints_the_partitions_it_creates(p100, capsys, settings):
    settings.EVENT_PARTITION = "month"
    call_command("ensure_partitions")
    out = capsys.readouterr().out
    month = datetime.now(UTC).replace(day=1)
    for _ in range(2):
        month = (month + timedelta(days=32)).replace(day=1)
    # Two months ahead: beyond the daily partitions the test database began with.
    assert f"created tracing_traceevent_p{month:%Y%m}01 ({month:%Y-%m}-01 to " in out
    assert "month partitions exist through" in out
    call_command("ensure_partitions")
    assert "0 created" in capsys.readouterr().out


def test_beat_ensures_partitions_every_hour():
    from integration_hub.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["ensure-event-partitions"]
    assert entry["task"] == "tracing.ensure_partitions"
    assert entry["schedule"].minute == {7} and len(entry["schedule"].hour) == 24
    app.loader.import_default_modules()
    assert "tracing.ensure_partitions" in app.tasks


@pytest.mark.skipif(uses_postgres(), reason="SQLite only: the event table stays one table there")
def test_sqlite_keeps_one_event_table_unique_on_event_id(p100):
    assert not tables.is_partitioned()
    assert ensure_partitions() == []
    assert drop_partitions_before(datetime.now(UTC), keep=lambda events: events) == 0
    first = ingest_events([event(event_id="once")])
    again = ingest_events([event(event_id="once")])
    assert (first.accepted, again.accepted, again.duplicates) == (1, 0, 1)
    assert TraceEvent.objects.filter(event_id="once").count() == 1
    assert not EventLedger.objects.exists()  # the event table's own unique index decides
    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'tracing_traceevent'")
        assert '"event_id" varchar(128) NOT NULL UNIQUE' in cursor.fetchone()[0]
