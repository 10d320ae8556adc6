"""Dashboard time ranges: presets and custom windows in the plant's time zone, chart buckets."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from integration_hub.models import Plant
from monitoring.slo import rollups

# ── Access ─────────────────────────────────────────────────────────────────────────────────


def plant_for_user(user, code):
    """The plant with this code if the person may see it: 404 if unknown, 403 if not theirs."""
    plant = Plant.objects.filter(code=code).first()
    if plant is None:
        raise Http404(f"No plant {code!r} is registered.")
    if not Plant.objects.for_user(user).filter(pk=plant.pk).exists():
        raise PermissionDenied(f"You are not assigned to plant {plant.code}.")
    return plant


# ── Time ranges ────────────────────────────────────────────────────────────────────────────

RANGES = {
    "1h": ("1 hour", timedelta(hours=1)),
    "24h": ("24 hours", timedelta(hours=24)),
    "7d": ("7 days", timedelta(days=7)),
    "28d": ("28 days", timedelta(days=28)),
}


DEFAULT_RANGE = "24h"


HOUR = timedelta(hours=1)


DAY = timedelta(days=1)


MAX_CUSTOM = timedelta(days=90)


@dataclass(frozen=True)
class Window:
    """The time range a page shows: one of RANGES, or custom from/to (in the plant's zone)."""

    key: str
    since: datetime
    until: datetime
    custom_from: str = ""
    custom_to: str = ""

    @property
    def span(self):
        return self.until - self.since

    @property
    def label(self):
        if self.key in RANGES:
            return f"last {RANGES[self.key][0]}"
        return "custom range"

    @property
    def step(self):
        """Width of one chart bucket: about 12–170 points whatever the range."""
        span = self.span
        if span <= timedelta(hours=3):
            return timedelta(minutes=5)
        if span <= timedelta(days=2):
            return timedelta(hours=1)
        if span <= timedelta(days=8):
            return timedelta(hours=6)
        return DAY

    def bucketer(self, tz):
        """A function from a moment to the start of the chart bucket that holds it: local
        midnight for daily buckets, else counted in steps from the start of the range (from
        its hour when the step is hours, so that an hourly rollup falls in one bucket).
        Remembers what it computed: rollup rows of many SLOs share their starts."""
        step, seen = self.step, {}
        origin = self.since if step < HOUR else rollups.floor_hour(self.since)

        def bucket(moment):
            start = seen.get(moment)
            if start is None:
                if step >= DAY:
                    local = moment.astimezone(tz)
                    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
                else:
                    start = origin + ((moment - origin) // step) * step
                seen[moment] = start
            return start

        return bucket

    @property
    def query(self):
        """The query-string parameters that select this window (for links that keep it)."""
        if self.key == "custom":
            return {"range": "custom", "from": self.custom_from, "to": self.custom_to}
        return {"range": self.key}


def parse_window(params, tz, now=None):
    """(Window, error or None) from ?range=1h|24h|7d|28d|custom&from=&to= (plant-local times)."""
    now = now or timezone.now()
    key = params.get("range") or DEFAULT_RANGE
    if key in RANGES:
        return Window(key, now - RANGES[key][1], now), None
    if key != "custom":
        choices = ", ".join([*RANGES, "custom"])
        return default_window(now), f"Unknown range {key!r}; choose one of {choices}."
    raw_from, raw_to = (params.get("from") or "").strip(), (params.get("to") or "").strip()
    try:
        since = _local_time(raw_from, tz) if raw_from else None
        until = _local_time(raw_to, tz) if raw_to else now
    except (ValueError, OverflowError):
        return default_window(now), "Times look like 2026-11-20T06:00 (in the plant's zone)."
    if since is None:
        return default_window(now), "A custom range needs a start time."
    until = min(until, now)
    if since >= until:
        return default_window(now), "The start must be before the end (and before now)."
    if until - since > MAX_CUSTOM:
        return default_window(now), "A custom range may span at most 90 days."
    return Window("custom", since, until, raw_from, raw_to), None


def default_window(now):
    return Window(DEFAULT_RANGE, now - RANGES[DEFAULT_RANGE][1], now)


def _local_time(value, tz):
    parsed = datetime.fromisoformat(value)
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    parsed.astimezone(UTC)  # raises OverflowError at the calendar's ends, before any query
    return parsed


def start_of_day(now, tz):
    """Midnight today in the plant's zone, as an aware time."""
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)
