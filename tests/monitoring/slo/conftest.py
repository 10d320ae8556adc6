"""Shared by the SLO tests: a fixed clock and order releases with known latencies."""

from datetime import UTC, datetime, timedelta

from monitoring.slo import outcomes
from monitoring.slo.figures import evaluate_slos
from tests.events import event

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def hms(text):
    h, m, s = (int(x) for x in text.split(":"))
    return NOW.replace(hour=h, minute=m, second=s)


def release(corr, released, latency=None, plant="P100"):
    """An order release at `released`, acknowledged `latency` seconds later (or never)."""
    events = [
        event("released", correlation_id=corr, at=released, plant=plant, event_id=f"{corr}-r")
    ]
    if latency is not None:
        at = released + timedelta(seconds=latency)
        events.append(
            event(
                "acknowledged",
                correlation_id=corr,
                at=at,
                plant=plant,
                source="MES",
                event_id=f"{corr}-a",
            )
        )
    return events


def evaluate(now=NOW):
    outcomes.refresh(now)
    return evaluate_slos(now)
