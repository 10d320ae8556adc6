"""Retention of monitoring data (replays, deliveries, rollups) and the whole run: what each
kind drops, what stays whatever its age, the dry run, the command and the daily beat entry."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from integration_hub.models import RetentionOverride, System
from monitoring.models import SLO, AlertChannel, Delivery, HourRollup, Replay, ReplayAttempt, Rollup
from monitoring.retention.run import apply_retention
from monitoring.slo import rollups
from tests.events import dead_letter, event
from tracing.ingest.pipeline import ingest_events
from tracing.partitions.ensure import ensure_partitions

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def replay(letter, *, state, days_ago):
    at = NOW - days_ago * DAY
    finished = at if state not in ("held", "queued", "sending") else None
    row = Replay.objects.create(
        dead_letter=letter, target=System.objects.get(code="MES"), requested_at=at,
        idempotency_key=f"k-{letter.pk}-{state}-{days_ago}", state=state, finished_at=finished,
    )  # fmt: skip
    ReplayAttempt.objects.create(replay=row, number=1, started_at=at, outcome="retry")
    return row


def test_finished_replays_go_with_their_attempts_after_90_days_in_flight_ones_stay(p100):
    old_done = replay(dead_letter("PO-1"), state="succeeded", days_ago=91)
    recent = replay(dead_letter("PO-2"), state="failed", days_ago=89)
    queued = replay(dead_letter("PO-3"), state="queued", days_ago=300)
    counts = apply_retention(now=NOW)
    assert counts["replays"] == 1
    assert set(Replay.objects.values_list("pk", flat=True)) == {recent.pk, queued.pk}
    assert not ReplayAttempt.objects.filter(replay_id=old_done.pk).exists()
    assert ReplayAttempt.objects.filter(replay_id=queued.pk).exists()


def delivery(channel, *, state, days_ago):
    at = NOW - days_ago * DAY
    return Delivery.objects.create(
        channel=channel, message_id=f"msg-{state}-{days_ago}", state=state, next_attempt_at=at,
        created_at=at,
    )  # fmt: skip


def test_alert_deliveries_go_after_90_days_unless_still_to_be_sent(db):
    channel = AlertChannel.objects.create(name="ops", kind="email", recipients=["a@b.c"])
    delivery(channel, state="sent", days_ago=91)
    delivery(channel, state="failed", days_ago=100)
    kept = {delivery(channel, state="sent", days_ago=89).pk}
    kept |= {delivery(channel, state="pending", days_ago=200).pk}
    assert apply_retention(now=NOW)["deliveries"] == 2
    assert set(Delivery.objects.values_list("pk", flat=True)) == kept


def rollup_rows(slo, plant, *ages):
    for days in ages:
        at = rollups.floor_hour(NOW - days * DAY)
        Rollup.objects.create(slo=slo, plant=plant, minute=at, good=1, total=1)
        HourRollup.objects.create(slo=slo, plant=plant, hour=at, good=1, total=1)


def test_minute_rollups_go_after_35_days_hour_rollups_after_two_years(p100):
    slo = SLO.objects.get(slug="order-release-latency")
    rollup_rows(slo, p100, 34, 36, 729, 731)
    counts = apply_retention(now=NOW)
    assert (counts["minute_rollups"], counts["hour_rollups"]) == (3, 1)
    assert Rollup.objects.count() == 1 and HourRollup.objects.count() == 3


def test_minute_rollups_an_slo_window_reads_are_kept(p100):
    slo = SLO.objects.get(slug="order-release-latency")
    SLO.objects.filter(pk=slo.pk).update(window_days=60)
    rollup_rows(slo, p100, 40, 62)
    assert apply_retention(now=NOW)["minute_rollups"] == 1
    assert Rollup.objects.get().minute == rollups.floor_hour(NOW - 40 * DAY)


def test_a_plant_keeps_its_rollups_as_long_as_it_says(p100, p200):
    slo = SLO.objects.get(slug="order-release-latency")
    rollup_rows(slo, p100, 40)
    rollup_rows(slo, p200, 40)
    RetentionOverride.objects.create(plant=p200, kind="minute_rollups", days=90)
    apply_retention(now=NOW)
    assert list(Rollup.objects.values_list("plant__code", flat=True)) == ["P200"]


def test_a_dry_run_counts_every_kind_and_removes_nothing(p100):
    slo = SLO.objects.get(slug="order-release-latency")
    rollup_rows(slo, p100, 40, 800)
    replay(dead_letter("PO-1"), state="succeeded", days_ago=100)
    counts = apply_retention(now=NOW, dry_run=True)
    assert counts["minute_rollups"] == 2 and counts["hour_rollups"] == 1
    assert counts["replays"] == 1
    assert (Rollup.objects.count(), HourRollup.objects.count(), Replay.objects.count()) == (2, 2, 1)
    assert rollups.final_lines() == {}  # nothing marked final either


def test_the_command_prints_what_it_removes_per_kind_with_progress(p100, capsys):
    slo = SLO.objects.get(slug="order-release-latency")
    rollup_rows(slo, p100, 40, 41, 42)
    call_command("apply_retention", "--dry-run")
    out = capsys.readouterr().out
    assert "Minute rollups: would remove 3" in out and "Raw events: would remove 0" in out
    assert Rollup.objects.count() == 3
    call_command("apply_retention", "--batch-size", "1")
    captured = capsys.readouterr()
    assert "Minute rollups: removed 3" in captured.out
    assert "Minute rollups: 1 of 3" in captured.err and "Minute rollups: 2 of 3" in captured.err
    assert "removed 3 rows" in captured.out
    assert Rollup.objects.count() == 0


@pytest.mark.postgres
def test_the_command_names_each_event_partition_it_drops_on_postgres(p100, capsys):
    then = timezone.now() - 100 * DAY
    ensure_partitions(now=then, unit="day")
    journey = [event("released", at=then), event("acknowledged", source="MES", at=then)]
    assert ingest_events(journey, now=then).accepted == 2
    with connection.cursor() as cursor:  # the test's deferred checks would block the DROP
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    name = f"tracing_traceevent_p{then:%Y%m%d}"
    call_command("apply_retention", "--dry-run")
    out = capsys.readouterr().out
    assert f"would drop partition {name} ({then:%Y-%m-%d} to " in out and ": 2 rows, 0 kept" in out
    assert "Raw events: would remove 2" in out
    call_command("apply_retention")
    out = capsys.readouterr().out
    assert f"] dropped partition {name} (" in out and "Raw events: removed 2" in out


def test_beat_runs_retention_daily():
    entry = settings.CELERY_BEAT_SCHEDULE["apply-retention"]
    assert entry["task"] == "monitoring.apply_retention"
    assert entry["schedule"].hour == {3} and entry["schedule"].minute == {17}


def test_the_retention_kinds_of_settings_and_models_agree():
    from integration_hub.models import RetentionKind

    assert set(settings.RETENTION_DAYS) == set(RetentionKind.values)
    assert settings.RETENTION_DAYS == {
        "events": 90, "payloads": 30, "dead_letters": 180, "minute_rollups": 35,
        "hour_rollups": 730, "deliveries": 90, "replays": 90, "transactions": 400,
    }  # fmt: skip
