"""How far the correlator is behind (INGEST_CORRELATION=deferred), and the doors' refusal to
take more while it is further behind than CORRELATOR_MAX_LAG_SECONDS or has more than
CORRELATOR_MAX_QUEUE events queued: what keeps the promise that transactions show an accepted
event within about a second."""

from django.conf import settings
from django.utils import timezone

from integration_hub.unavailable import Saturated
from tracing.models import PendingCorrelation


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


def refuse_when_behind(now=None):
    """Raise Saturated (503 with Retry-After) when correlation is deferred and the correlator
    is behind: its oldest queued event has waited longer than CORRELATOR_MAX_LAG_SECONDS, or
    more events are queued than CORRELATOR_MAX_QUEUE (1.5 passes by default: a longer queue
    takes passes of its own to fold, and its newest events would wait past the promise).
    Senders hold back until the correlator catches up instead of the lag growing without
    bound. One or two indexed row reads."""
    if settings.INGEST_CORRELATION != "deferred":
        return
    oldest = _oldest()
    waited = _waited(oldest, now or timezone.now())
    if waited > settings.CORRELATOR_MAX_LAG_SECONDS:
        behind = (
            f"Correlation is {waited:.1f} s behind (at most {settings.CORRELATOR_MAX_LAG_SECONDS:g}"
            " s allowed)"
        )
    elif oldest and (queued := _queued_at_most(oldest)) > settings.CORRELATOR_MAX_QUEUE:
        behind = (
            f"Correlation is behind: about {queued:,} events queued (at most "
            f"{settings.CORRELATOR_MAX_QUEUE:,} allowed)"
        )
    else:
        return
    raise Saturated(f"{behind}; nothing was stored. Retry after 1 s.", retry_after=1)
