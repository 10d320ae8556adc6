"""How far the correlator is behind (INGEST_CORRELATION=deferred), and the doors' refusal to
take more while it is further behind than CORRELATOR_MAX_LAG_SECONDS (the oldest queued event
has waited that long, or the queue with the batch at the door would take that long to fold at
the pace the correlators last measured) or has more than CORRELATOR_MAX_QUEUE events queued:
what keeps the promise that transactions show an accepted event within about a second."""

import os
import socket
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from integration_hub.unavailable import Saturated
from tracing.models import CorrelatorPace, PendingCorrelation

# A pace older than this is not the correlators' pace now (stopped, or idle since): ignored.
PACE_FRESH = timedelta(seconds=60)
# The weight of a faster measurement in the smoothed pace: the pace the doors see rises by
# halves and falls at once (a pass slowed by a checkpoint or by the senders' load counts at
# once; the queue it would let in otherwise waits past the promise).
PACE_WEIGHT = 0.5
# How often a door held back (admit) looks at the queue again.
ADMIT_POLL_SECONDS = 0.025


def _oldest():
    """(id, received_at) of the oldest queued event, or None: one indexed row read."""
    return PendingCorrelation.objects.order_by("id").values_list("id", "received_at").first()


def _waited(oldest, now):
    """Seconds the oldest queued event has waited (0.0 with nothing queued)."""
    return max((now - oldest[1]).total_seconds(), 0.0) if oldest else 0.0


def backlog(now=None):
    """(queued events, seconds the oldest has waited)."""
    return PendingCorrelation.objects.count(), _waited(_oldest(), now or timezone.now())


def _queued_at_most(oldest):
    """How many events are queued at most, by one more indexed row read, not a count: the ids
    run from the oldest to the newest, so their span bounds the count (rows a side-by-side pass
    already folded in between only make it larger)."""
    last = PendingCorrelation.objects.order_by("-id").values_list("id", flat=True).first()
    return (last or oldest[0]) - oldest[0] + 1


def pace(now=None):
    """Events per second the running correlators fold, together (None when none measured
    lately)."""
    since = (now or timezone.now()) - PACE_FRESH
    fresh = CorrelatorPace.objects.filter(measured_at__gte=since)
    return fresh.aggregate(total=Sum("events_per_second"))["total"]


def record_pace(folded, seconds, now=None, worker=None):
    """Fold this pass's rate into this correlator's pace: a slower one replaces it, a faster
    one raises it by PACE_WEIGHT (a fresh one replaces a stale one). A correlator's first
    record also clears the rows of those stopped long since (one row per process start)."""
    now, rate = now or timezone.now(), folded / max(seconds, 1e-6)
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    row = CorrelatorPace.objects.filter(worker=worker).first()
    if row is None:
        CorrelatorPace.objects.filter(measured_at__lt=now - PACE_FRESH).delete()
        CorrelatorPace.objects.create(worker=worker, events_per_second=rate, measured_at=now)
        return
    if rate > row.events_per_second and row.measured_at >= now - PACE_FRESH:
        rate = PACE_WEIGHT * rate + (1 - PACE_WEIGHT) * row.events_per_second
    row.events_per_second, row.measured_at = rate, now
    row.save(update_fields=["events_per_second", "measured_at"])


def _behind(now, incoming):
    """Why the correlator is too far behind to take `incoming` more events now, or None: its
    oldest queued event has waited longer than CORRELATOR_MAX_LAG_SECONDS; more events are
    queued than CORRELATOR_MAX_QUEUE (1.5 passes by default: the bound before any pace is
    known); or the queue and the incoming events would take longer than the lag to fold at the
    correlators' measured pace (the newest would wait past the promise, however fast or slow
    the machine is today). With an empty queue a batch always goes in. Up to three indexed
    reads."""
    oldest, limit = _oldest(), settings.CORRELATOR_MAX_LAG_SECONDS
    waited = _waited(oldest, now)
    if waited > limit:
        return f"Correlation is {waited:.1f} s behind (at most {limit:g} s allowed)"
    if not oldest:
        return None
    if (queued := _queued_at_most(oldest)) > settings.CORRELATOR_MAX_QUEUE:
        return (
            f"Correlation is behind: about {queued:,} events queued (at most "
            f"{settings.CORRELATOR_MAX_QUEUE:,} allowed)"
        )
    if (rate := pace(now)) and (queued + incoming) / rate > limit:
        return (
            f"Correlation is behind: about {queued:,} events queued and {incoming:,} arriving "
            f"take {(queued + incoming) / rate:.1f} s to fold at {rate:,.0f} events/s (at most "
            f"{limit:g} s allowed)"
        )
    return None


def admit(now, incoming=0):
    """The time to store a batch of `incoming` events at (correlation deferred): `now`, or,
    when the correlator is behind (_behind), a moment later once it has caught up, looking
    again every ADMIT_POLL_SECONDS for at most CORRELATOR_DOOR_WAIT_SECONDS (a pass usually
    ends within it, where a refused sender would idle the whole second of Retry-After); then
    Saturated (503 with Retry-After), nothing stored. Senders hold back until the correlator
    catches up instead of the lag growing without bound. The wait is not lag: the events are
    received when they are stored. With correlation in the request, `now` at once."""
    if settings.INGEST_CORRELATION != "deferred":
        return now
    deadline = time.monotonic() + settings.CORRELATOR_DOOR_WAIT_SECONDS
    while (behind := _behind(now, incoming)) is not None:
        if time.monotonic() + ADMIT_POLL_SECONDS > deadline:
            raise Saturated(f"{behind}; nothing was stored. Retry after 1 s.", retry_after=1)
        time.sleep(ADMIT_POLL_SECONDS)
        now = timezone.now()
    return now
