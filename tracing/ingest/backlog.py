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


def oldest_wait(now=None):
    """Seconds the oldest queued event has waited (0.0 with nothing queued)."""
    return _waited(_oldest(), now or timezone.now())


def _oldest():
    """(id, received_at) of the oldest queued event, or None: one indexed row read."""
    return PendingCorrelation.objects.order_by("id").values_list("id", "received_at").first()


def _waited(oldest, now):
    return max((now - oldest[1]).total_seconds(), 0.0) if oldest else 0.0


def backlog(now=None):
    """(queued events, seconds the oldest has waited)."""
    return PendingCorrelation.objects.count(), oldest_wait(now)


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
    one raises it by PACE_WEIGHT (a fresh one replaces a stale one)."""
    now, rate = now or timezone.now(), folded / max(seconds, 1e-6)
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    row = CorrelatorPace.objects.filter(worker=worker, measured_at__gte=now - PACE_FRESH).first()
    if row is not None and rate > row.events_per_second:
        rate = PACE_WEIGHT * rate + (1 - PACE_WEIGHT) * row.events_per_second
    CorrelatorPace.objects.update_or_create(
        worker=worker, defaults={"events_per_second": rate, "measured_at": now}
    )


def refuse_when_behind(now=None, incoming=0):
    """Raise Saturated (503 with Retry-After) when correlation is deferred and the correlator
    is behind: its oldest queued event has waited longer than CORRELATOR_MAX_LAG_SECONDS; the
    queue and the `incoming` events would take longer than that to fold at the correlators'
    measured pace (the newest would wait past the promise, however fast or slow the machine
    is today); or more events are queued than CORRELATOR_MAX_QUEUE (1.5 passes by default:
    the bound before any pace is known). Senders hold back until the correlator catches up
    instead of the lag growing without bound. With an empty queue a batch always goes in.
    Up to three indexed reads."""
    if settings.INGEST_CORRELATION != "deferred":
        return
    now = now or timezone.now()
    oldest, limit = _oldest(), settings.CORRELATOR_MAX_LAG_SECONDS
    waited = _waited(oldest, now)
    if waited > limit:
        behind = f"Correlation is {waited:.1f} s behind (at most {limit:g} s allowed)"
    elif not oldest:
        return
    elif (queued := _queued_at_most(oldest)) > settings.CORRELATOR_MAX_QUEUE:
        behind = (
            f"Correlation is behind: about {queued:,} events queued (at most "
            f"{settings.CORRELATOR_MAX_QUEUE:,} allowed)"
        )
    elif (rate := pace(now)) and (queued + incoming) / rate > limit:
        behind = (
            f"Correlation is behind: about {queued:,} events queued and {incoming:,} arriving "
            f"take {(queued + incoming) / rate:.1f} s to fold at {rate:,.0f} events/s (at most "
            f"{limit:g} s allowed)"
        )
    else:
        return
    raise Saturated(f"{behind}; nothing was stored. Retry after 1 s.", retry_after=1)


def admit(now, incoming=0):
    """The time to store a batch at: `now`, or, when the correlator is behind, a moment later
    once it has caught up, waiting at most CORRELATOR_DOOR_WAIT_SECONDS (a pass usually ends
    within it, where a refused sender would idle the whole second of Retry-After); then
    Saturated as refuse_when_behind raises it. The wait is not lag: the events are received
    when they are stored."""
    deadline = time.monotonic() + settings.CORRELATOR_DOOR_WAIT_SECONDS
    while True:
        try:
            refuse_when_behind(now, incoming)
            return now
        except Saturated:
            if time.monotonic() + ADMIT_POLL_SECONDS > deadline:
                raise
        time.sleep(ADMIT_POLL_SECONDS)
        now = timezone.now()
