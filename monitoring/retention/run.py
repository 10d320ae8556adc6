"""One retention run over every layer's purgers, in an order that keeps integrity: replays
and deliveries, then dead letters before the events and transactions they hold back, then
rollups. Before anything goes, rollups over what is about to be purged are marked final."""

from datetime import timedelta

from django.db.models import Max
from django.utils import timezone

from integration_hub.retention import cutoffs, run
from monitoring.models import SLO
from monitoring.retention.purgers import AFTER_TRACING, BEFORE_TRACING, minute_cutoffs
from monitoring.slo import rollups
from tracing import retention as tracing_retention


def purges():
    return [*BEFORE_TRACING, *tracing_retention.PURGES, *AFTER_TRACING]


def final_lines_at(now):
    """Per plant, the hour before which rollups must not be recomputed once this run purges:
    the minute rollups' cutoff, or the cutoffs of the transactions and dead letters whose
    outcomes the rollups count (a transaction's outcome may fall up to an SLO threshold after
    it was last seen), whichever is latest."""
    slack = SLO.objects.filter(enabled=True).aggregate(t=Max("threshold_seconds"))["t"] or 0
    lines = {}
    sources = (
        (minute_cutoffs(now), timedelta(0)),
        (cutoffs("transactions", now), timedelta(seconds=slack)),
        (cutoffs("dead_letters", now), timedelta(0)),
    )
    for source, shift in sources:
        for plant_id, at in source.by_plant().items():
            lines[plant_id] = max(lines.get(plant_id, at), at + shift)
    return {plant_id: rollups.ceil_hour(at) for plant_id, at in lines.items()}


def apply_retention(*, now=None, dry_run=False, batch_size=None, progress=None, note=None):
    """Purge what has expired (or, on a dry run, count it); return {kind: rows}. `progress`
    and `note` hear about batches and dropped partitions (integration_hub.retention.run)."""
    now = now or timezone.now()
    if not dry_run:
        rollups.mark_final(final_lines_at(now))
    return {
        purge.kind: run(
            purge, now=now, dry_run=dry_run, batch_size=batch_size, progress=progress, note=note
        )
        for purge in purges()
    }
