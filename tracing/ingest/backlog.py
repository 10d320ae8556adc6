"""How far the correlator is behind (INGEST_CORRELATION=deferred), and the doors' refusal to
take more while it is further behind than CORRELATOR_MAX_LAG_SECONDS: what keeps the promise
that transactions show an accepted event within about a second."""

from django.conf import settings
from django.utils import timezone

from integration_hub.unavailable import Saturated
from tracing.models import PendingCorrelation


def oldest_wait(now=None):
    """Seconds the oldest queued event has waited (0.0 with nothing queued)."""
    now = now or timezone.now()
    first = PendingCorrelation.objects.order_by("id").values_list("received_at", flat=True).first()
    return max((now - first).total_seconds(), 0.0) if first else 0.0


def backlog(now=None):
    """(queued events, seconds the oldest has waited)."""
    return PendingCorrelation.objects.count(), oldest_wait(now)


def refuse_when_behind(now=None):
    """Raise Saturated (503 with Retry-After) when correlation is deferred and its oldest queued
    event has waited longer than CORRELATOR_MAX_LAG_SECONDS: senders hold back until the
    correlator catches up instead of the lag growing without bound. One indexed row read."""
    if settings.INGEST_CORRELATION != "deferred":
        return
    waited = oldest_wait(now)
    if waited > settings.CORRELATOR_MAX_LAG_SECONDS:
        raise Saturated(
            f"Correlation is {waited:.1f} s behind (at most {settings.CORRELATOR_MAX_LAG_SECONDS:g}"
            " s allowed); nothing was stored. Retry after 1 s.",
            retry_after=1,
        )
