"""What of the monitoring data has expired, and what must stay whatever its age.

Kept regardless of age: replays in flight (held, queued, sending) and their attempts, alert
deliveries not yet sent or given up, and minute rollups an SLO window still reads (minute
retention is never shorter than the longest enabled SLO window plus a day).
"""

from django.db.models import Max
from django.db.models.functions import Coalesce

from integration_hub.retention import Purge, cutoffs
from monitoring.models import (
    ACTIVE_REPLAY_STATES,
    SLO,
    DayRollup,
    Delivery,
    HourRollup,
    Replay,
    Rollup,
)


def longest_window_days():
    return SLO.objects.filter(enabled=True).aggregate(days=Max("window_days"))["days"] or 0


def minute_cutoffs(now):
    """Minute rollups go in whole hours, so an hour row never sums a partly purged hour."""
    return cutoffs("minute_rollups", now, minimum_days=longest_window_days() + 1, whole_hours=True)


def expired_replays(now):
    """Finished replays (and, with them, their attempts) that ended before the cutoff."""
    return (
        Replay.objects.exclude(state__in=ACTIVE_REPLAY_STATES)
        .annotate(ended=Coalesce("finished_at", "requested_at"))
        .filter(cutoffs("replays", now).q(plant="dead_letter__plant_id", time="ended"))
    )


def expired_deliveries(now):
    """Deliveries sent or given up before the cutoff; a plant's are its alerts' (test notices
    and alerts without a plant follow the setting)."""
    return Delivery.objects.filter(
        cutoffs("deliveries", now).q(plant="alert__plant_id", time="created_at"),
        state__in=(Delivery.State.SENT, Delivery.State.FAILED),
    )


def expired_minute_rollups(now):
    return Rollup.objects.filter(minute_cutoffs(now).q(plant="plant_id", time="minute"))


def expired_hour_rollups(now):
    return HourRollup.objects.filter(
        cutoffs("hour_rollups", now, whole_hours=True).q(plant="plant_id", time="hour")
    )


def remove_hours_and_their_days(hours):
    """Hour rollups take the day rollups that sum them along: every day that starts at or
    before an hour that goes (so a day row never outlives one of its hours)."""
    latest = hours.values("slo_id", "plant_id").annotate(last=Max("hour")).order_by()
    for row in latest:
        DayRollup.objects.filter(
            slo_id=row["slo_id"], plant_id=row["plant_id"], day__lte=row["last"]
        ).delete()
    return hours.delete()


BEFORE_TRACING = [
    Purge("replays", expired_replays),
    Purge("deliveries", expired_deliveries),
]
AFTER_TRACING = [
    Purge("minute_rollups", expired_minute_rollups),
    Purge("hour_rollups", expired_hour_rollups, remove_hours_and_their_days),
]
