"""Retention on PostgreSQL drops an event partition whole once every plant's events in it have
expired, moving aside first what must stay; a plant's shorter retention still deletes rows."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from integration_hub.models import RetentionOverride
from integration_hub.retention import run
from tests.events import event, failed
from tracing import retention
from tracing.ingest.pipeline import ingest_events
from tracing.models import DeadLetter, EventLedger, TraceEvent
from tracing.partitions import tables
from tracing.partitions.ensure import ensure_partitions

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
JAN_10 = datetime(2026, 1, 10, 12, tzinfo=UTC)
DAY = timedelta(days=1)
PARTITION = "tracing_traceevent_p20260110"


@pytest.fixture
def january(p100, p200):
    """Daily partitions around 10 January, holding a completed journey, an open one and a
    resolved dead letter's events of P100, and a completed journey of P200."""
    ensure_partitions(now=JAN_10, unit="day")
    sent = [
        event("released", correlation_id="PO-DONE", event_id="erp-PO-DONE-1"),
        event("acknowledged", correlation_id="PO-DONE", source="MES"),
        event("released", correlation_id="PO-OPEN"),
        failed("received", correlation_id="PO-DL", payload={"order": 1}, status="rejected"),
        event("released", correlation_id="PO-P200", plant="P200"),
        event("acknowledged", correlation_id="PO-P200", plant="P200", source="MES"),
    ]
    for item in sent:
        item["occurred_at"] = (JAN_10 - DAY / 24).isoformat()
    assert ingest_events(sent, now=JAN_10).accepted == 6
    DeadLetter.objects.update(state="resolved", closed_at=JAN_10)
    # The test's own inserts leave deferred foreign-key checks that would block a DROP; a
    # retention run never has any.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def purge_events(now, **options):
    (events,) = [p for p in retention.PURGES if p.kind == "events"]
    notes = []
    removed = run(events, now=now, note=lambda purge, text: notes.append(text), **options)
    return removed, notes


def partition_names():
    return {p.name for p in tables.existing()}


def where(correlation_id):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM tracing_traceevent WHERE correlation_id = %s",
            [correlation_id],
        )
        return {row[0] for row in cursor.fetchall()}


def test_an_expired_partition_is_dropped_whole_and_what_must_stay_moves_aside(january):
    letter = DeadLetter.objects.get()
    kept_ids = set(
        TraceEvent.objects.filter(correlation_id__in=["PO-OPEN", "PO-DL"]).values_list(
            "event_id", flat=True
        )
    )
    removed, notes = purge_events(JAN_10 + 91 * DAY)
    assert PARTITION not in partition_names()
    assert removed == 4  # both completed journeys
    assert f"dropped partition {PARTITION} (2026-01-10 to 2026-01-11): 4 rows, 2 kept" in "\n".join(
        notes
    )
    assert not TraceEvent.objects.filter(correlation_id__in=["PO-DONE", "PO-P200"]).exists()
    # The open transaction's event and the dead letter's own event stay, in the default partition.
    assert where("PO-OPEN") == where("PO-DL") == {"tracing_traceevent_default"}
    letter.refresh_from_db()
    assert letter.event.correlation_id == "PO-DL"
    assert set(EventLedger.objects.values_list("event_id", flat=True)) == kept_ids


def test_a_dry_run_names_the_partition_and_drops_nothing(january):
    removed, notes = purge_events(JAN_10 + 91 * DAY, dry_run=True)
    assert removed == 4
    assert f"would drop partition {PARTITION} (2026-01-10 to 2026-01-11): 6 rows, 2 kept" in (
        "\n".join(notes)
    )
    assert PARTITION in partition_names() and TraceEvent.objects.count() == 6
    assert EventLedger.objects.count() == 6


def test_a_plant_keeping_events_longer_holds_the_partition_back_others_rows_go_one_by_one(
    january, p200
):
    RetentionOverride.objects.create(plant=p200, kind="events", days=120)
    removed, notes = purge_events(JAN_10 + 91 * DAY)
    assert PARTITION in partition_names() and notes == []
    assert removed == 2
    assert set(TraceEvent.objects.values_list("correlation_id", flat=True)) == {
        "PO-OPEN", "PO-DL", "PO-P200"
    }  # fmt: skip
    assert EventLedger.objects.count() == 4  # the ledger rows went with the deleted events
    removed, notes = purge_events(JAN_10 + 121 * DAY)
    assert PARTITION not in partition_names() and removed == 2


def test_a_plant_with_a_shorter_retention_loses_its_rows_before_the_partition_goes(january, p200):
    RetentionOverride.objects.create(plant=p200, kind="events", days=30)
    removed, notes = purge_events(JAN_10 + 31 * DAY)
    assert removed == 2 and notes == []
    assert PARTITION in partition_names()
    assert not TraceEvent.objects.filter(plant=p200).exists()


def test_an_event_sent_again_after_its_partition_went_is_stored_again(january):
    purge_events(JAN_10 + 91 * DAY)
    resent = event("released", correlation_id="PO-DONE", event_id="erp-PO-DONE-1", at=JAN_10)
    assert ingest_events([resent], now=JAN_10 + 91 * DAY).accepted == 1  # as on SQLite


def test_events_past_their_retention_wait_for_their_whole_partition_to_expire(january):
    removed, notes = purge_events(JAN_10 + 90 * DAY + timedelta(hours=1))
    assert removed == 0 and PARTITION in partition_names()  # 10 January is not over yet
    assert not [text for text in notes if PARTITION in text]
    assert TraceEvent.objects.count() == 6
    removed, notes = purge_events(JAN_10 + 91 * DAY)
    assert removed == 4 and PARTITION not in partition_names()
