"""Outcomes: how each transaction, dead letter or reconciliation exception counts for each
SLO, and the rollups over them.

An item counts once: when its end is reached (good if within the threshold), or when the
threshold passes without it (bad). Late events that move a milestone change the outcome, and
the rollup minutes it left and joined are recomputed, so figures are corrected, not appended.

The clock stops in the plant's planned downtime (for the item's flow): latency and age count
only the time outside it, and the threshold passes that much later. A downtime added or removed
later recomputes the items of its span (`recompute_span`).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integration_hub.calendars import NO_DOWNTIME, Calendar
from monitoring.models import (
    SLO,
    DayRollup,
    HourRollup,
    Outcome,
    ReconciliationException,
    Rollup,
    Watermark,
)
from monitoring.slo import histogram, rollups
from tracing.ingest.correlate import reached_at
from tracing.models import DeadLetter, Transaction

# Re-read what changed in the last minute too: a batch stamped before the watermark may commit
# after it. Recomputing an unchanged outcome is harmless.
COMMIT_LAG = timedelta(seconds=60)


CHUNK = 2000


EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Result:
    at: datetime
    good: bool
    latency: float | None
    pending: bool


def _time(value):
    return datetime.fromisoformat(value) if value else None


def minute_of(moment):
    return moment.replace(second=0, microsecond=0)


def latency_result(start, end, threshold, now, windows=NO_DOWNTIME):
    """Counted at the end if within the threshold, else (bad) when the threshold passed;
    time in planned downtime (`windows`) does not count."""
    if start is None:
        return None
    deadline = windows.deadline(start, threshold)
    if end is not None:
        latency = windows.elapsed(start, end)
        good = latency <= threshold
        return Result(end if good else deadline, good, latency, False)
    return Result(deadline, False, None, now < deadline)


def transaction_result(slo, txn, threshold, now, windows=NO_DOWNTIME):
    if slo.kind == SLO.Kind.SUCCESS:
        if txn.failure_at is not None:
            return Result(txn.failure_at, False, None, False)
        if txn.completed_at is not None:
            return Result(txn.completed_at, True, None, False)
        return Result(txn.stuck_at, False, None, now < txn.stuck_at)
    # A fan-out milestone counts when every target system has reached it.
    fan_out = (slo.flow.fan_out_milestones, slo.flow_targets)
    start = reached_at(txn, slo.start, *fan_out)
    ends = [at for at in (reached_at(txn, m, *fan_out) for m in slo.ends) if at is not None]
    return latency_result(start, min(ends) if ends else None, threshold, now, windows)


def dead_letter_result(slo, letter, threshold, now, windows=NO_DOWNTIME):
    return latency_result(letter.first_failed_at, letter.closed_at, threshold, now, windows)


def exception_result(slo, exception, threshold, now, windows=NO_DOWNTIME):
    """A reconciliation exception ages from when the first system got the milestone."""
    return latency_result(exception.since, exception.closed_at, threshold, now, windows)


# Item model → (SLO subject, Outcome field, how it counts); transactions are measured by flow.
SUBJECTS = {
    DeadLetter: (SLO.Subject.DEAD_LETTERS, "dead_letter", dead_letter_result),
    ReconciliationException: (SLO.Subject.RECONCILIATION, "exception", exception_result),
}


class SLOSet:
    """The enabled SLOs with their per-plant thresholds, indexed by what they measure."""

    def __init__(self):
        self.slos = list(
            SLO.objects.filter(enabled=True)
            .select_related("flow")
            .prefetch_related("thresholds", "flow__target_systems")
        )
        self.by_flow = defaultdict(list)
        self.by_subject = defaultdict(list)
        self.calendar = Calendar.everything()
        for slo in self.slos:
            slo.plant_thresholds = {t.plant_id: t.threshold_seconds for t in slo.thresholds.all()}
            if slo.subject == SLO.Subject.TRANSACTIONS:
                slo.flow_targets = tuple(s.id for s in slo.flow.target_systems.all())
                self.by_flow[slo.flow_id].append(slo)
            else:
                self.by_subject[slo.subject].append(slo)

    @staticmethod
    def threshold(slo, plant_id):
        return slo.plant_thresholds.get(plant_id, slo.threshold_seconds)

    def results(self, item, now):
        """(slo, result) for every SLO that measures this transaction, dead letter or
        reconciliation exception."""
        if type(item) in SUBJECTS:
            subject, _, compute = SUBJECTS[type(item)]
            slos = self.by_subject[subject]
        else:
            slos, compute = self.by_flow.get(item.flow_id, ()), transaction_result
        windows = self.calendar.windows(item.plant_id, item.flow_id)
        for slo in slos:
            if slo.plant_id is None or slo.plant_id == item.plant_id:
                result = compute(slo, item, self.threshold(slo, item.plant_id), now, windows)
                if result is not None:
                    yield slo, result


def apply_outcomes(items, slo_set, now):
    """Upsert the outcomes of these items; return the (slo, plant, minute) rollups they touch."""
    if not items:
        return set()
    kind = SUBJECTS[type(items[0])][1] if type(items[0]) in SUBJECTS else "transaction"
    ids = [item.id for item in items]
    existing = {
        (o.slo_id, getattr(o, f"{kind}_id")): o
        for o in Outcome.objects.filter(**{f"{kind}_id__in": ids})
    }
    dirty, rows = set(), []
    for item in items:
        for slo, result in slo_set.results(item, now):
            old = existing.get((slo.id, item.id))
            new = (result.at, result.good, result.latency, result.pending)
            if old is not None and (old.at, old.good, old.latency, old.pending) == new:
                continue
            if old is not None and not old.pending:
                dirty.add((slo.id, old.plant_id, old.minute))
            if not result.pending:
                dirty.add((slo.id, item.plant_id, minute_of(result.at)))
            rows.append(
                Outcome(
                    slo_id=slo.id,
                    plant_id=item.plant_id,
                    at=result.at,
                    minute=minute_of(result.at),
                    good=result.good,
                    latency=result.latency,
                    pending=result.pending,
                    **{f"{kind}_id": item.id},
                )
            )
    if rows:
        Outcome.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["slo", kind],
            update_fields=["plant", "at", "minute", "good", "latency", "pending"],
        )
    return dirty


def recompute_rollups(dirty):
    """Rebuild the given (slo, plant, minute) rollup rows from their outcomes, then the hourly
    rollups that hold them; final ones (before their plant's line) stay as they are."""
    lines = rollups.final_lines()
    dirty = {(s, p, m) for s, p, m in dirty if p not in lines or m >= lines[p]}
    groups = defaultdict(set)
    for slo_id, plant_id, minute in dirty:
        groups[(slo_id, plant_id)].add(minute)
    for (slo_id, plant_id), minutes in groups.items():
        sums = {
            m: Rollup(slo_id=slo_id, plant_id=plant_id, minute=m, histogram={}) for m in minutes
        }
        minute_list = sorted(minutes)
        for start in range(0, len(minute_list), 500):
            chunk = minute_list[start : start + 500]
            outcomes = Outcome.objects.filter(
                slo_id=slo_id, plant_id=plant_id, minute__in=chunk, pending=False
            ).values_list("minute", "good", "latency")
            for minute, good, latency in outcomes.iterator(chunk_size=5000):
                row = sums[minute]
                row.total += 1
                row.good += good
                if latency is not None:
                    histogram.add(row.histogram, latency)
        rollups.store(Rollup, "minute", slo_id, plant_id, sums)
    rollups.recompute_hours({(s, p, rollups.floor_hour(m)) for s, p, m in dirty})


def _apply_in_batches(items, slo_set, now, dirty, done=0, progress=None):
    """apply_outcomes over a queryset, CHUNK items at a time; adds to `dirty`, returns the count."""
    batch = []
    for item in items.iterator(chunk_size=CHUNK):
        batch.append(item)
        if len(batch) >= CHUNK:
            dirty |= apply_outcomes(batch, slo_set, now)
            done += len(batch)
            batch = []
            if progress:
                progress(done)
    dirty |= apply_outcomes(batch, slo_set, now)
    return done + len(batch)


def _changed_items(model, since, due_ids, flows):
    qs = model.objects.filter(Q(updated_at__gte=since) | Q(id__in=due_ids))
    if flows is not None:
        qs = qs.filter(flow_id__in=flows)
    return qs.order_by("id")


def refresh(now=None, *, progress=None):
    """Bring outcomes and rollups up to date with what changed since the last run.

    Looks at transactions and dead letters updated since the watermark (less COMMIT_LAG) and
    at pending outcomes whose threshold has passed. Returns how many rollup rows it recomputed.
    """
    now = now or timezone.now()
    mark, _ = Watermark.objects.get_or_create(name="outcomes", defaults={"at": EPOCH})
    since = mark.at - COMMIT_LAG
    slo_set = SLOSet()
    due = Outcome.objects.filter(pending=True, at__lte=now)
    dirty, done = set(), 0
    sources = [(Transaction, "transaction", list(slo_set.by_flow))]
    for model, (subject, field, _) in SUBJECTS.items():
        if slo_set.by_subject[subject]:
            sources.append((model, field, None))
    for model, field, flows in sources:
        due_ids = due.filter(**{f"{field}__isnull": False}).values(f"{field}_id")
        items = _changed_items(model, since, due_ids, flows)
        done = _apply_in_batches(items, slo_set, now, dirty, done, progress)
    recompute_rollups(dirty)
    Watermark.objects.filter(pk=mark.pk).update(at=now)
    return len(dirty)


def recompute_span(plant_id, start, end, now=None):
    """A planned downtime from start to end was added or removed: recompute the outcomes of the
    plant's items whose clock it can move (begun before its end, not finished before its start)
    and the rollups they touch. Returns how many items were looked at."""
    now = now or timezone.now()
    slo_set = SLOSet()
    sources = [
        Transaction.objects.filter(plant_id=plant_id, first_seen__lte=end).filter(
            Q(last_seen__gte=start) | Q(completed_at__isnull=True)
        ),
        DeadLetter.objects.filter(plant_id=plant_id, first_failed_at__lte=end).filter(
            Q(closed_at__gte=start) | Q(closed_at__isnull=True)
        ),
        ReconciliationException.objects.filter(plant_id=plant_id, since__lte=end).filter(
            Q(closed_at__gte=start) | Q(closed_at__isnull=True)
        ),
    ]
    dirty, seen = set(), 0
    for qs in sources:
        seen = _apply_in_batches(qs.order_by("id"), slo_set, now, dirty, seen)
    recompute_rollups(dirty)
    return seen


def rebuild(now=None, *, progress=None):
    """Recompute every outcome and rollup from the transactions and dead letters (final
    rollups, whose raw data retention may have purged, are kept as they are)."""
    lines = rollups.final_lines()
    with transaction.atomic():
        Outcome.objects.all().delete()
        Rollup.objects.exclude(rollups.before_final(lines, "minute")).delete()
        HourRollup.objects.exclude(rollups.before_final(lines, "hour")).delete()
        # Days are sums of hours: any day with an hour rebuilt goes, and comes back from them.
        DayRollup.objects.exclude(rollups.before_final(lines, "next_day", inclusive=True)).delete()
        Watermark.objects.update_or_create(name="outcomes", defaults={"at": EPOCH})
    return refresh(now, progress=progress)
