"""Periods of the event partitions: UTC days, ISO weeks (from Monday) or calendar months."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings

TABLE = "tracing_traceevent"
DEFAULT_PARTITION = f"{TABLE}_default"
# How many periods beyond the current one exist at any time (a week's or two months' margin).
AHEAD = {"day": 7, "week": 2, "month": 2}


@dataclass(frozen=True)
class Partition:
    """One range partition: events received in [start, end)."""

    name: str
    start: datetime
    end: datetime

    def __str__(self):
        return f"{self.name} ({self.start:%Y-%m-%d} to {self.end:%Y-%m-%d})"


def partition_name(start):
    return f"{TABLE}_p{start:%Y%m%d}"


def period_start(moment, unit):
    """The start (UTC midnight) of the period that holds `moment`."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def next_start(start, unit):
    if unit == "week":
        return start + timedelta(weeks=1)
    if unit == "month":
        return (start + timedelta(days=32)).replace(day=1)
    return start + timedelta(days=1)


def wanted(now, *, unit=None, since=None):
    """The periods that should have a partition at `now`: from the one before now's (or from
    `since`'s, when earlier) through AHEAD periods after now's."""
    unit = unit or settings.EVENT_PARTITION
    current = period_start(now, unit)
    start = period_start(current - timedelta(microseconds=1), unit)
    if since is not None:
        start = min(start, period_start(since, unit))
    periods = []
    for _ in range(AHEAD[unit] + 1):
        current = next_start(current, unit)
    while start < current:
        end = next_start(start, unit)
        periods.append(Partition(partition_name(start), start, end))
        start = end
    return periods


def uncovered(period, existing):
    """The parts of `period` that no existing partition covers (after a change of
    EVENT_PARTITION the new periods only fill what the old ones leave)."""
    gaps, start = [], period.start
    for other in sorted(existing, key=lambda p: p.start):
        if other.end <= start or other.start >= period.end:
            continue
        if other.start > start:
            gaps.append(Partition(partition_name(start), start, other.start))
        start = max(start, other.end)
    if start < period.end:
        gaps.append(Partition(partition_name(start), start, period.end))
    return gaps
