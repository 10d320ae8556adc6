"""Chart figures are written without plotly's per-request validation, yet are exactly what
plotly writes for them; the SLO page's 28-day history goes by day."""

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
import pytest
from django.utils import timezone

from integration_hub.models import Downtime
from monitoring.dashboards import charts
from monitoring.dashboards.windows import Window
from monitoring.models import SLO
from monitoring.slo.evaluation import run_evaluation
from tests.events import event
from tracing.ingest.pipeline import ingest_events

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
WEEK = Window("7d", NOW - timedelta(days=7), NOW)
DOWNTIME = [Downtime(start=NOW - timedelta(hours=5), end=NOW - timedelta(hours=2))]
SLO_ = SLO(objective=0.99, threshold_seconds=60)


def as_plotly_writes_it(figure):
    """The figure after plotly validated it and wrote it out (raises on an invalid property)."""
    return json.loads(go.Figure(figure).to_json())


def history_points(n):
    return [
        {"at": (WEEK.since + i * timedelta(hours=1)).isoformat(), "good": 95 + i % 5,
         "total": 100, "attainment": None if i == 3 else (95 + i % 5) / 100,
         "burn_rate": float(i % 20)}
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_figure_is_what_plotly_writes(theme):
    buckets = [
        (WEEK.since + i * timedelta(hours=6), 10 + i, 9,
         {"p50": 1.0 + i, "p90": 2.0, "p95": None if i == 2 else 3.0, "p99": 4.0})
        for i in range(28)
    ]  # fmt: skip
    figures = [
        charts.release_figure(buckets, slo=SLO_, window=WEEK, tz=BERLIN, zone="Europe/Berlin",
                              theme=theme, downtimes=DOWNTIME),
        charts.slo_history_figure(history_points(168), slo=SLO_, window=WEEK, tz=BERLIN,
                                  zone="Europe/Berlin", theme=theme, downtimes=DOWNTIME),
        charts.histogram_figure({str(k): k for k in range(20, 60, 3)}, threshold=60, theme=theme),
        charts.histogram_figure({"30": 4}, threshold=None, theme=theme),
    ]  # fmt: skip
    for figure in figures:
        assert as_plotly_writes_it(figure) == figure
    history = figures[1]
    assert [s.get("y0") for s in history["layout"]["shapes"][:2]] == [99, 1]  # objective, 1×
    assert history["data"][0]["x"][0] == "2026-11-16T13:00:00"  # Berlin wall-clock time


@pytest.mark.django_db
def test_the_28_day_slo_history_has_one_point_per_day(client, bob, p100):
    now = timezone.now()
    events = []
    for day in range(10):
        at = now - timedelta(days=day, minutes=30)
        events += [
            event("released", correlation_id=f"PO-{day}", at=at),
            event("acknowledged", correlation_id=f"PO-{day}", source="MES",
                  at=at + timedelta(seconds=5 if day % 3 else 90)),
        ]  # fmt: skip
    ingest_events(events)
    run_evaluation()
    client.force_login(bob)
    page = client.get("/plants/P100/slos/order-release-latency/?range=28d")
    assert "Attainment and burn rate per day" in page.text
    attainment = page.context["history_figure"]["data"][0]
    assert len(attainment["x"]) == 10 and all(x.endswith("T00:00:00") for x in attainment["x"])
    assert sorted(attainment["y"]) == [0.0] * 4 + [100.0] * 6
    assert page.context["history_total"] == 10 and page.context["history_good"] == 6
    day = client.get("/plants/P100/slos/order-release-latency/?range=24h")
    assert "Attainment and burn rate per hour" in day.text
