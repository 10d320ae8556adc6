"""Which partitions should exist: names and ranges per kind of period (no database needed)."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ImproperlyConfigured

from integration_hub.env import env_choice
from tests.integration_hub.conftest import run_django
from tracing.partitions.periods import Partition, partition_name, uncovered, wanted


def at(*args):
    return datetime(*args, tzinfo=UTC)


def ranges(partitions):
    return [(p.name, f"{p.start:%Y-%m-%d}", f"{p.end:%Y-%m-%d}") for p in partitions]


def test_daily_partitions_run_from_yesterday_to_a_week_ahead():
    days = wanted(at(2026, 12, 3, 14, 30), unit="day")
    assert ranges(days)[:2] == [
        ("tracing_traceevent_p20261202", "2026-12-02", "2026-12-03"),
        ("tracing_traceevent_p20261203", "2026-12-03", "2026-12-04"),
    ]
    assert ranges(days)[-1] == ("tracing_traceevent_p20261210", "2026-12-10", "2026-12-11")
    assert len(days) == 9


def test_weekly_partitions_start_on_mondays_and_reach_two_weeks_ahead():
    weeks = wanted(at(2026, 12, 3, 14, 30), unit="week")  # a Thursday
    assert ranges(weeks) == [
        ("tracing_traceevent_p20261123", "2026-11-23", "2026-11-30"),
        ("tracing_traceevent_p20261130", "2026-11-30", "2026-12-07"),
        ("tracing_traceevent_p20261207", "2026-12-07", "2026-12-14"),
        ("tracing_traceevent_p20261214", "2026-12-14", "2026-12-21"),
    ]


def test_monthly_partitions_follow_the_calendar_across_the_year_end():
    months = wanted(at(2026, 12, 31, 23, 59), unit="month")
    assert ranges(months) == [
        ("tracing_traceevent_p20261101", "2026-11-01", "2026-12-01"),
        ("tracing_traceevent_p20261201", "2026-12-01", "2027-01-01"),
        ("tracing_traceevent_p20270101", "2027-01-01", "2027-02-01"),
        ("tracing_traceevent_p20270201", "2027-02-01", "2027-03-01"),
    ]


def test_existing_data_is_covered_from_its_oldest_event():
    days = wanted(at(2026, 12, 3, 12), unit="day", since=at(2026, 11, 20, 8))
    assert days[0].name == "tracing_traceevent_p20261120" and len(days) == 21


def test_a_new_period_kind_only_fills_what_the_old_partitions_leave():
    days = wanted(at(2026, 12, 3, 12), unit="day")
    week = Partition(partition_name(at(2026, 12, 7)), at(2026, 12, 7), at(2026, 12, 14))
    assert ranges(uncovered(week, days)) == [
        ("tracing_traceevent_p20261211", "2026-12-11", "2026-12-14")
    ]


@pytest.mark.parametrize("value", ["hour", "daily", "1"])
def test_event_partition_takes_day_week_or_month_only(monkeypatch, value):
    monkeypatch.setenv("EVENT_PARTITION", value)
    with pytest.raises(
        ImproperlyConfigured, match="EVENT_PARTITION must be one of day, week, month"
    ):
        env_choice("EVENT_PARTITION", "day", ("day", "week", "month"))


def test_the_hub_refuses_to_start_with_an_unknown_event_partition():
    result = run_django({"EVENT_PARTITION": "fortnight"})
    assert result.returncode != 0
    assert "EVENT_PARTITION must be one of day, week, month; got 'fortnight'" in result.stderr
