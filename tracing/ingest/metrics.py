"""Ingest counters for Prometheus: events by source system, plant and outcome, and request
latency by door. Under gunicorn they are shared between workers through
PROMETHEUS_MULTIPROC_DIR (integration_hub/gunicorn_conf.py sets it up)."""

import time
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

from integration_hub.models import Plant, System

INGESTED = Counter(
    "hub_ingest_events",
    "Events received, by source system, plant and outcome (accepted, duplicate, rejected).",
    ["source", "plant", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "hub_ingest_request_seconds",
    "Time to answer one ingest request, by door (events, otlp).",
    ["door"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UNKNOWN = "unknown"


@contextmanager
def request_timer(door):
    started = time.perf_counter()
    try:
        yield
    finally:
        REQUEST_SECONDS.labels(door=door).observe(time.perf_counter() - started)


def count_outcomes(raw_events, result):
    """Count each event of a batch once by its outcome. Source and plant are labels only when
    they are registered codes (a rejected event's free text would make unbounded series)."""
    rejected = {item["index"] for item in result.rejected}
    inserted = set(result.inserted_ids)
    counts, seen = {}, set()
    known = None
    for index, raw in enumerate(raw_events):
        if index in rejected:
            if known is None:
                known = (
                    set(System.objects.values_list("code", flat=True)),
                    set(Plant.objects.values_list("code", flat=True)),
                )
            source, plant = _label(raw, "source", known[0]), _label(raw, "plant", known[1])
            outcome = "rejected"
        else:
            source, plant = raw["source"], raw["plant"]
            event_id = raw["event_id"]
            outcome = "accepted" if event_id in inserted and event_id not in seen else "duplicate"
            seen.add(event_id)
        counts[source, plant, outcome] = counts.get((source, plant, outcome), 0) + 1
    for (source, plant, outcome), number in counts.items():
        INGESTED.labels(source=source, plant=plant, outcome=outcome).inc(number)


def _label(raw, name, known):
    value = raw.get(name) if isinstance(raw, dict) else None
    return value if isinstance(value, str) and value in known else UNKNOWN
