"""Ingest counters for Prometheus: events by source system, plant and outcome, and request
latency by door. Under gunicorn they are shared between workers through
PROMETHEUS_MULTIPROC_DIR (integration_hub/gunicorn_conf.py sets it up)."""

import time
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

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


def count_outcomes(batch, inserted_ids, *, catalog):
    """Count each event of a validated batch once by its outcome. Source and plant are labels
    only when they are registered codes (a rejected event's free text would make unbounded
    series)."""
    inserted = set(inserted_ids)
    counts = {}

    def count(source, plant, outcome):
        counts[source, plant, outcome] = counts.get((source, plant, outcome), 0) + 1

    for event in batch.valid:
        count(event.source, event.plant, "accepted" if event.event_id in inserted else "duplicate")
    for event in batch.repeats:
        count(event.source, event.plant, "duplicate")
    for value in batch.rejected_values:
        count(
            _label(value, "source", catalog.systems),
            _label(value, "plant", catalog.plants),
            "rejected",
        )
    for (source, plant, outcome), number in counts.items():
        INGESTED.labels(source=source, plant=plant, outcome=outcome).inc(number)


def _label(raw, name, known):
    value = raw.get(name) if isinstance(raw, dict) else None
    return value if isinstance(value, str) and value in known else UNKNOWN
