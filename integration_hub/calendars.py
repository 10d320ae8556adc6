"""Plant calendars: shifts in the plant's time zone, and planned downtime in which the clock
stops. Downtimes are instants (DST cannot stretch them); shifts are wall-clock times, read in the
plant's zone on the day they start (so a 22:00-06:00 shift starting Sunday covers Monday 03:00).
"""

from bisect import bisect_right
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db import transaction

from integration_hub.celery import app
from integration_hub.models import Downtime, Shift


def merged(spans):
    """Sorted, non-overlapping (start, end) spans."""
    out = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


class Windows:
    """Planned downtime of one plant and flow, merged: the clock's stops."""

    def __init__(self, spans=()):
        self.spans = merged(spans)
        self._starts = [s for s, _ in self.spans]

    def __bool__(self):
        return bool(self.spans)

    def stopped(self, start, end):
        """Seconds of (start, end) that fall in downtime."""
        total = 0.0
        for s, e in self.spans:
            if e <= start:
                continue
            if s >= end:
                break
            total += (min(e, end) - max(s, start)).total_seconds()
        return total

    def elapsed(self, start, end):
        """Seconds from start to end that count: downtime left out."""
        return max(0.0, (end - start).total_seconds() - self.stopped(start, end))

    def deadline(self, start, seconds):
        """When `seconds` of counted time have passed since start (downtime adds to it)."""
        moment, left = start, timedelta(seconds=seconds)
        index = bisect_right(self._starts, moment)
        if index and self.spans[index - 1][1] > moment:  # starts inside a stop
            moment = self.spans[index - 1][1]
        for s, e in self.spans[index:]:
            if moment + left <= s:
                break
            left -= s - moment
            moment = e
        return moment + left

    def covers(self, moment):
        index = bisect_right(self._starts, moment)
        return bool(index) and self.spans[index - 1][1] > moment


class Calendar:
    """The downtimes of every plant over a span, loaded once; `windows(plant, flow)` per item."""

    def __init__(self, since, until, plant_ids=None):
        self._by_plant = defaultdict(list)
        self._cache = {}
        if plant_ids is not None and not plant_ids:
            return
        rows = Downtime.objects.filter(start__lt=until, end__gt=since)
        if plant_ids is not None:
            rows = rows.filter(plant_id__in=plant_ids)
        for row in rows.prefetch_related("flows"):
            flows = {f.id for f in row.flows.all()}
            self._by_plant[row.plant_id].append((row.start, row.end, flows))

    @classmethod
    def ahead_of(cls, since, plant_ids):
        """The downtimes of these plants from `since` on, planned ones included."""
        return cls(since, datetime(9999, 12, 30, tzinfo=UTC), plant_ids)

    @classmethod
    def everything(cls):
        """Every planned downtime (a plant has a handful a month: a small table)."""
        return cls(datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC))

    def windows(self, plant_id, flow_id=None):
        key = (plant_id, flow_id)
        if key not in self._cache:
            self._cache[key] = Windows(
                (start, end)
                for start, end, flows in self._by_plant.get(plant_id, ())
                if not flows or flow_id in flows
            )
        return self._cache[key]


NO_DOWNTIME = Windows()


def _runs(shift, tz, first_day, last_day):
    """(begins, ends) of each run of the shift that starts between the two days, as instants:
    wall-clock times in the plant's zone on the day it starts (overnight: ends the next day)."""
    day = first_day
    while day <= last_day:
        if day.weekday() in shift.days:
            end_day = day + timedelta(days=1) if shift.end <= shift.start else day
            begins = datetime.combine(day, shift.start, tzinfo=tz).astimezone(UTC)
            yield begins, datetime.combine(end_day, shift.end, tzinfo=tz).astimezone(UTC)
        day += timedelta(days=1)


def shift_at(plant, moment):
    """The plant's shift running at `moment` (in the plant's zone), or None."""
    today = moment.astimezone(plant.tzinfo).date()
    for shift in Shift.objects.filter(plant=plant):
        for begins, ends in _runs(shift, plant.tzinfo, today - timedelta(days=1), today):
            if begins <= moment < ends:
                return shift
    return None


def recompute(row):
    """After commit, the workers recompute the SLO outcomes and rollups over a downtime's span
    (it was added, moved or removed). By task name: monitoring is a layer up."""
    span = [
        row.plant_id,
        row.start.astimezone(UTC).isoformat(),
        row.end.astimezone(UTC).isoformat(),
    ]
    transaction.on_commit(lambda: app.send_task("monitoring.recompute_downtime", args=span))


def shifts_ended(plant, since, until):
    """[(shift, begins, ends)] of the plant's shifts that ended in (since, until], in the
    plant's zone."""
    tz = plant.tzinfo
    first = since.astimezone(tz).date() - timedelta(days=1)
    last = until.astimezone(tz).date()
    found = [
        (shift, begins.astimezone(tz), ends.astimezone(tz))
        for shift in plant.shifts.all()
        for begins, ends in _runs(shift, tz, first, last)
        if since < ends <= until
    ]
    return sorted(found, key=lambda item: item[2])
