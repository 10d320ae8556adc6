"""SLO evaluation from rollups: attainment, error budget, burn rates and status.

Reads only rollup rows (one per minute, SLO and plant with data), so its cost grows with the
number of minutes in the window, not with the number of events.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from monitoring.models import SLO, Outcome, Rollup, SLOStatus
from monitoring.slo import histogram, rollups

BURN_WINDOWS = {
    "5m": timedelta(minutes=5),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "3d": timedelta(days=3),
}
# Google SRE workbook, multiwindow multi-burn-rate alerts (page, then ticket).
PAGE_RULES = (("1h", "5m", 14.4), ("6h", "30m", 6.0))


TICKET_RULES = (("3d", "6h", 1.0),)


def burn_rate(bad, total, objective):
    """How fast the error budget burns: 1.0 spends exactly the budget over the window."""
    if not total:
        return 0.0
    return (bad / total) / (1 - objective)


def _firing(burn_rates, rules):
    return next(
        ((a, b, limit) for a, b, limit in rules if burn_rates[a] > limit and burn_rates[b] > limit),
        None,
    )


def _items(n):
    return f"{n} item{'s' if n != 1 else ''}"


def _burning(word, burn_rates, rule, tail):
    long, short, _ = rule
    return (
        f"{word}: the error budget burns {burn_rates[long]:g}× over {long} and "
        f"{burn_rates[short]:g}× over {short}{tail}"
    )


def judge(slo, *, burn_rates, total, attainment, budget_remaining, overdue=0):
    """(status, one sentence why). A page-level burn or a spent error budget breaches; a
    ticket-level burn or items overdue now (age SLOs) warn; the reason names the first that
    holds, so a supervisor who reads only the colour is not misled by a calm recent hour."""
    Status = SLOStatus.Status
    are = "is" if overdue == 1 else "are"
    also = f", and {_items(overdue)} {are} overdue now" if overdue else ""
    page = _firing(burn_rates, PAGE_RULES)
    if page:
        return Status.BREACHING, _burning(
            "Breaching", burn_rates, page, f" (pages above {page[2]:g}×){also}."
        )
    if total and budget_remaining <= 0:
        return Status.BREACHING, (
            f"Breaching: the error budget of the {slo.window_days}-day window is spent "
            f"({budget_remaining * 100:.0f} % left){also}."
        )
    ticket = _firing(burn_rates, TICKET_RULES)
    if ticket:
        return Status.WARNING, _burning(
            "Warning",
            burn_rates,
            ticket,
            f"; at this pace it runs out before the window ends{also}.",
        )
    if overdue:
        return Status.WARNING, (
            f"Warning: {_items(overdue)} {are} past the threshold "
            "and still open; it stays at warning until they close."
        )
    if not total:
        return Status.OK, f"No data: nothing counted in the {slo.window_days}-day window yet."
    return Status.OK, (
        f"OK: {attainment * 100:.2f} % good against an objective of {slo.objective * 100:g} %, "
        f"{max(budget_remaining, 0) * 100:.0f} % of the error budget left, no fast burn"
        f"{', nothing overdue' if slo.kind == SLO.Kind.AGE else ''}."
    )


@dataclass
class Figures:
    """Good/total over the window and bad/total over each burn window, for one scope."""

    good: int = 0
    total: int = 0
    windows: dict = field(default_factory=lambda: {name: [0, 0] for name in BURN_WINDOWS})

    def add(self, row):
        self.good += row["window_good"] or 0
        self.total += row["window_total"] or 0
        for name in BURN_WINDOWS:
            self.windows[name][0] += row[f"bad_{name}"] or 0
            self.windows[name][1] += row[f"total_{name}"] or 0

    def merge(self, other):
        self.good += other.good
        self.total += other.total
        for name, (bad, count) in other.windows.items():
            self.windows[name][0] += bad
            self.windows[name][1] += count

    def status_row(self, slo, plant_id, now, overdue=0):
        bad = self.total - self.good
        budget = (1 - slo.objective) * self.total
        rates = {
            name: round(burn_rate(b, t, slo.objective), 4) for name, (b, t) in self.windows.items()
        }
        attainment = self.good / self.total if self.total else None
        remaining = 1 - bad / budget if budget else 1.0
        status, reason = judge(
            slo,
            burn_rates=rates,
            total=self.total,
            attainment=attainment,
            budget_remaining=remaining,
            overdue=overdue,
        )
        return SLOStatus(
            slo=slo,
            plant_id=plant_id,
            good=self.good,
            total=self.total,
            attainment=attainment,
            error_budget_total=budget,
            error_budget_remaining=remaining,
            burn_rates=rates,
            status=status,
            overdue=overdue,
            reason=reason[:300],
            evaluated_at=now,
        )


def window_figures(slo, now):
    """{plant_id: Figures} for the SLO's window, from one aggregate query over its rollups."""
    start = now - timedelta(days=slo.window_days)
    sums = {"window_good": Sum("good"), "window_total": Sum("total")}
    for name, span in BURN_WINDOWS.items():
        recent = Q(minute__gte=now - span)
        sums[f"bad_{name}"] = Sum(F("total") - F("good"), filter=recent)
        sums[f"total_{name}"] = Sum("total", filter=recent)
    rows = Rollup.objects.filter(slo=slo, minute__gte=start, minute__lte=now)
    if slo.plant_id:
        rows = rows.filter(plant_id=slo.plant_id)
    figures = {}
    for row in rows.values("plant_id").annotate(**sums).order_by():
        figures.setdefault(row["plant_id"], Figures()).add(row)
    return figures


def overdue_now():
    """{(slo id, plant id): items} of age SLOs counted bad with no end yet: still open now,
    however long ago they went past the threshold (one query on a small partial index)."""
    rows = (
        Outcome.objects.filter(
            slo__kind=SLO.Kind.AGE, good=False, latency__isnull=True, pending=False
        )
        .values("slo_id", "plant_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(row["slo_id"], row["plant_id"]): row["n"] for row in rows}


def evaluate_slos(now=None):
    """Evaluate every enabled SLO, per plant and overall, and store the status snapshots.

    An SLO scoped to one plant has only that plant's row. Returns the stored rows.
    """
    now = now or timezone.now()
    statuses = []
    overdue = overdue_now()
    for slo in SLO.objects.filter(enabled=True).select_related("flow", "plant"):
        per_plant = window_figures(slo, now)
        late = {plant: n for (slo_id, plant), n in overdue.items() if slo_id == slo.id}
        for plant_id in late.keys() - per_plant.keys():
            per_plant[plant_id] = Figures()  # overdue items that went bad before the window
        for plant_id, figures in per_plant.items():
            statuses.append(figures.status_row(slo, plant_id, now, late.get(plant_id, 0)))
        if slo.plant_id is None:
            overall = Figures()
            for figures in per_plant.values():
                overall.merge(figures)
            statuses.append(overall.status_row(slo, None, now, sum(late.values())))
        elif slo.plant_id not in per_plant:
            statuses.append(Figures().status_row(slo, slo.plant_id, now))
    with transaction.atomic():
        SLOStatus.objects.all().delete()
        SLOStatus.objects.bulk_create(statuses)
    return statuses


def series(slo, *, plant_id=None, since, until):
    """Hourly attainment and burn rate between two times, oldest first."""
    hours = defaultdict(lambda: [0, 0])
    found = rollups.rows(
        [slo.id], plant_id=plant_id, since=since, until=until, with_histogram=False
    )
    for _, _, start, good, total, _ in found:
        hour = hours[rollups.floor_hour(start)]
        hour[0] += good
        hour[1] += total
    return [point(slo, hour, good, total) for hour, (good, total) in sorted(hours.items())]


def point(slo, at, good, total):
    """One point of an SLO's history: counts, attainment and burn rate from `at` on."""
    return {
        "at": at.isoformat(),
        "good": good,
        "total": total,
        "attainment": good / total if total else None,
        "burn_rate": round(burn_rate(total - good, total, slo.objective), 4),
    }


def latency_percentiles(slo, *, plant_id=None, since, until):
    """p50/p90/p95/p99 in seconds from the summed histograms of the range."""
    return histogram.percentiles(
        rollups.merged_histogram([slo.id], plant_id=plant_id, since=since, until=until)
    )
