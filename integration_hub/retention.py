"""Retention: how long each kind of data is kept, and the batched purge every layer's purgers
run on.

Days per kind come from settings.RETENTION_DAYS (0: forever), overridden per plant by
RetentionOverride rows. Each layer describes what of its own data has expired and what must
stay (tracing/retention.py, monitoring/retention/); the command that runs them all sits in
monitoring, the one layer that may import both.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from integration_hub.models import Plant, RetentionKind, RetentionOverride


def floor_hour(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass
class Cutoffs:
    """Where one kind's retention ends: rows older than their plant's cutoff have expired.
    None keeps a plant's rows forever."""

    default: object
    plants: dict

    def q(self, *, plant, time):
        """A filter for the expired rows; `plant` and `time` name their fields."""
        expired = Q(pk__in=[])
        if self.default is not None:
            expired |= ~Q(**{f"{plant}__in": list(self.plants)}) & Q(
                **{f"{time}__lt": self.default}
            )
        by_cutoff = {}
        for plant_id, cutoff in self.plants.items():
            if cutoff is not None:
                by_cutoff.setdefault(cutoff, []).append(plant_id)
        for cutoff, plant_ids in by_cutoff.items():
            expired |= Q(**{f"{plant}__in": plant_ids, f"{time}__lt": cutoff})
        return expired

    def everywhere(self):
        """The moment before which every plant's rows have expired; None while any plant (or
        the default) keeps them forever."""
        moments = [self.default, *self.plants.values()]
        return None if None in moments else min(moments)

    def by_plant(self):
        """{plant id: cutoff} for every plant whose rows of this kind expire."""
        cutoffs = {
            pk: self.plants.get(pk, self.default)
            for pk in Plant.objects.values_list("pk", flat=True)
        }
        return {pk: cutoff for pk, cutoff in cutoffs.items() if cutoff is not None}


def days_for(kind, plant=None):
    """Days this kind is kept for a plant (or by default); 0 means forever."""
    if plant is not None:
        override = RetentionOverride.objects.filter(plant=plant, kind=kind).first()
        if override is not None:
            return override.days
    return settings.RETENTION_DAYS[kind]


def cutoffs(kind, now, *, minimum_days=0, whole_hours=False):
    """The cutoffs of a kind at `now`: its days (never fewer than `minimum_days`) back,
    optionally floored to the hour."""

    def cutoff(days):
        if not days:
            return None
        moment = now - timedelta(days=max(days, minimum_days))
        return floor_hour(moment) if whole_hours else moment

    overrides = RetentionOverride.objects.filter(kind=kind).values_list("plant_id", "days")
    return Cutoffs(
        default=cutoff(settings.RETENTION_DAYS[kind]),
        plants={plant_id: cutoff(days) for plant_id, days in overrides},
    )


@dataclass
class Purge:
    """One kind's purge: `expired(now)` is a queryset of the rows to go (never the ones that
    must stay), `remove(queryset)` removes a batch of them (delete, unless told otherwise).
    `drop(now=, dry_run=, note=)`, when given, first removes whole stretches of expired rows at
    once (partitions) and returns how many (a dry run: would); `expired` leaves those out."""

    kind: str
    expired: object
    remove: object = None
    drop: object = None

    @property
    def label(self):
        return RetentionKind(self.kind).label


def delete(queryset):
    return queryset.delete()


def run(purge, *, now, dry_run=False, batch_size=None, progress=None, note=None):
    """Remove the expired rows of one kind in batches of `batch_size` (each its own
    transaction), after dropping what the purge drops whole; return how many. A dry run only
    counts them. `note(purge, text)` hears about each drop."""
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    done = 0
    if purge.drop is not None:
        done = purge.drop(now=now, dry_run=dry_run, note=note and (lambda text: note(purge, text)))
    expired = purge.expired(now)
    total = done + expired.count()
    if dry_run or done == total:
        if progress:
            progress(purge, total, total)
        return total
    remove, last = purge.remove or delete, None
    while True:
        ids = list(purge.expired(now).order_by().values_list("pk", flat=True)[:batch_size])
        if not ids or ids == last:  # nothing left, or nothing the last batch could remove
            break
        with transaction.atomic():
            remove(expired.model.objects.filter(pk__in=ids))
        done, last = done + len(ids), ids
        if progress:
            progress(purge, done, total)
    return done
