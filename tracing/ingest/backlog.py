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
    first = PendingCorrelation.objects.order_by("id").values_list("received_at", flat=True).first()
    return _waited(first, now or timezone.now())


def _waited(received_at, now):
    return max((now - received_at).total_seconds(), 0.0) if received_at else 0.0


def backlog(now=None):
    """(queued events, seconds the oldest has waited)."""
    return PendingCorrelation.objects.count(), oldest_wait(now)


def _queue_ends():
    """(received_at of the oldest queued event, how many are queued at most) in two indexed
    row reads, not a count: the ids run from the oldest to the newest, so their span bounds
    the count (rows a side-by-side pass already folded in between only make it larger)."""
    first = PendingCorrelation.objects.order_by("id").values_list("id", "received_at").first()
    if first is None:
        return None, 0
    last = PendingCorrelation.objects.order_by("-id").values_list("id", flat=True).first()
    return first[1], (last or first[0]) - first[0] + 1


def refuse_when_behind(now=None):
    """Raise Saturated (503 with Retry-After) when correlation is deferred and the correlator
    is behind: its oldest queued event has waited longer than CORRELATOR_MAX_LAG_SECONDS, or
    more events are queued than CORRELATOR_MAX_QUEUE (1.5 passes by default: a longer queue
    takes passes of its own to fold, and its newest events would wait past the promise).
    Senders hold back until the correlator catches up instead of the lag growing without
    bound. Two indexed row reads."""
    if settings.INGEST_CORRELATION != "deferred":
        return
    oldest, queued = _queue_ends()
    waited = _waited(oldest, now or timezone.now())
    if waited > settings.CORRELATOR_MAX_LAG_SECONDS:
        behind = (
            f"Correlation is {waited:.1f} s behind (at most {settings.CORRELATOR_MAX_LAG_SECONDS:g}"
            " s allowed)"
        )
    elif queued > settings.CORRELATOR_MAX_QUEUE:
        behind = (
            f"Correlation is behind: about {queued:,} events queued (at most "
            f"{settings.CORRELATOR_MAX_QUEUE:,} allowed)"
        )
    else:
        return
    raise Saturated(f"{behind}; nothing was stored. Retry after 1 s.", retry_after=1)
