"""Business impact: which open transactions dead letters hold, and which SLOs those count against.

"38 order releases waiting for MES at P100 — Order release latency at 96.1 % of 99 %", so the
analyst replays what matters first. Reads the latest SLO status snapshots (monitoring), never
raw events.
"""

from collections import defaultdict

from django.db.models import Count, Q

from monitoring.models import SLO, SLOStatus
from tracing.models import DeadLetter

# How much an SLO's condition weighs when ranking groups: a breaching SLO first.
STATUS_WEIGHT = {"breaching": 4, "warning": 2, "ok": 1}


def _slos_by_flow_plant():
    """(flow id, plant id) → [(slo, status row or None)], for enabled transaction SLOs."""
    slos = list(SLO.objects.filter(enabled=True, subject=SLO.Subject.TRANSACTIONS))
    statuses = {(s.slo_id, s.plant_id): s for s in SLOStatus.objects.filter(slo__in=slos)}
    return slos, statuses


def _measuring(slos, statuses, flow_id, plant_id):
    """(SLO, this plant's status or None) for each SLO measuring the flow at the plant. Never
    the all-plants status: it may hide or invent trouble at this plant."""
    return [
        (slo, statuses.get((slo.id, plant_id)))
        for slo in slos
        if slo.flow_id == flow_id and slo.plant_id in (None, plant_id)
    ]


def _slo_line(slo, status):
    objective = f"{slo.objective * 100:g} %"
    if status is None or status.attainment is None:
        return {"slo": slo.slug, "name": slo.name, "text": f"{slo.name} (objective {objective})"}
    return {
        "slo": slo.slug,
        "name": slo.name,
        "attainment": status.attainment,
        "objective": slo.objective,
        "status": status.status,
        "text": f"{slo.name} at {status.attainment * 100:.1f} % of {objective}",
    }


def _plural(n, name):
    name = name.lower()
    return f"{n} {name}" if n == 1 else f"{n} {name}s"


def impact_of(qs):
    """Impact lines for open dead letters in qs, keyed by fingerprint.

    Returns {fingerprint: {"held": transactions held open, "score": rank, "lines": [...]}}.
    """
    rows = (
        qs.filter(state__in=DeadLetter.OPEN_STATES, transaction__isnull=False)
        .exclude(transaction__state="completed")
        .order_by()
        .values("fingerprint", "flow_id", "flow__name", "plant_id", "plant__code", "target__code")
        .annotate(held=Count("transaction", distinct=True))
    )
    rows = list(rows)
    if not rows:
        return {}
    slos, statuses = _slos_by_flow_plant()
    result = defaultdict(lambda: {"held": 0, "score": 0.0, "lines": []})
    for row in rows:
        entry = result[row["fingerprint"]]
        entry["held"] += row["held"]
        weight = 1.0
        slo_lines = []
        for slo, status in _measuring(slos, statuses, row["flow_id"], row["plant_id"]):
            slo_lines.append(_slo_line(slo, status))
            weight += STATUS_WEIGHT.get(status.status if status else "ok", 1)
        waiting = f" waiting for {row['target__code']}" if row["target__code"] else " waiting"
        text = f"{_plural(row['held'], row['flow__name'])}{waiting} at {row['plant__code']}"
        if slo_lines:
            text += " — " + "; ".join(line["text"] for line in slo_lines)
        entry["lines"].append(
            {
                "flow": row["flow__name"],
                "plant": row["plant__code"],
                "target": row["target__code"],
                "transactions": row["held"],
                "slos": slo_lines,
                "text": text,
            }
        )
        entry["score"] += row["held"] * weight
    return dict(result)


def group_impact(qs):
    return impact_of(qs)


def letter_impact(letter):
    """The impact of one dead letter: its transaction held open and the SLOs it counts against."""
    txn = letter.transaction
    if letter.state not in DeadLetter.OPEN_STATES or txn is None:
        return None
    if txn.state == "completed":
        return {"text": "Its transaction completed anyway; nothing is held open.", "slos": []}
    slos, statuses = _slos_by_flow_plant()
    lines = [
        _slo_line(slo, status)
        for slo, status in _measuring(slos, statuses, letter.flow_id, letter.plant_id)
    ]
    text = f"Holds {letter.flow.name.lower()} {letter.correlation_id} open at {letter.plant.code}"
    if lines:
        text += " — counts against " + "; ".join(line["text"] for line in lines)
    return {"text": text, "slos": lines}


def open_counts(qs):
    """Counts by state for the inbox header (updated by HTMX without a reload)."""
    counts = qs.order_by().aggregate(
        open=Count("id", filter=Q(state__in=DeadLetter.OPEN_STATES)),
        new=Count("id", filter=Q(state="new")),
        investigating=Count("id", filter=Q(state="investigating")),
        replay_queued=Count("id", filter=Q(state="replay_queued")),
        superseded=Count(
            "id", filter=Q(state__in=DeadLetter.OPEN_STATES, superseded_at__isnull=False)
        ),
    )
    return counts
