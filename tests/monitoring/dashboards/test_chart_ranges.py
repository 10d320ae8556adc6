"""Charts span the range asked for: with one bucket of data the time axis still shows the
whole 24 hours (or 7 days), not a fraction of a second around that bucket."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from integration_hub.models import Downtime
from monitoring.slo.evaluation import run_evaluation
from tests.events import event
from tracing.ingest.pipeline import ingest_events

pytestmark = pytest.mark.django_db


def local(text):
    return datetime.fromisoformat(text)


def spans(start, end, expected):
    """Wall-clock times in the plant's zone: a DST change inside the range moves it by 1 h."""
    return abs((end - start) - expected) <= timedelta(hours=1)


@pytest.fixture
def one_release(p100):
    at = timezone.now() - timedelta(minutes=30)
    ingest_events(
        [
            event("released", correlation_id="PO-1", at=at),
            event(
                "acknowledged", correlation_id="PO-1", source="MES", at=at + timedelta(seconds=5)
            ),
        ]
    )
    run_evaluation()


@pytest.mark.parametrize("range_, hours", [("24h", 24), ("7d", 7 * 24)])
def test_the_release_chart_spans_the_selected_range(client, bob, one_release, range_, hours):
    client.force_login(bob)
    figure = client.get(f"/plants/P100/?range={range_}").context["release_figure"]
    start, end = (local(x) for x in figure["layout"]["xaxis"]["range"])
    assert spans(start, end, timedelta(hours=hours))
    assert len(figure["data"][0]["x"]) >= 1  # the one bucket is drawn inside it
    threshold = figure["data"][-1]
    assert [local(x) for x in threshold["x"]] == [start, end]  # the objective line spans it


def test_the_slo_history_spans_the_selected_range(client, bob, one_release):
    client.force_login(bob)
    response = client.get("/plants/P100/slos/order-release-latency/?range=7d")
    layout = response.context["history_figure"]["layout"]
    start, end = (local(x) for x in layout["xaxis"]["range"])
    assert spans(start, end, timedelta(days=7))
    assert layout["xaxis2"]["range"] == layout["xaxis"]["range"]


def test_planned_downtime_shows_as_a_band_on_the_charts(client, bob, p100, one_release):
    now = timezone.now()
    Downtime.objects.create(
        plant=p100, start=now - timedelta(hours=3), end=now - timedelta(hours=2),
        reason="Line 2 changeover",
    )  # fmt: skip
    Downtime.objects.create(  # out of the range: not shown
        plant=p100, start=now - timedelta(days=3), end=now - timedelta(days=2), reason="Stocktake"
    )
    client.force_login(bob)
    response = client.get("/plants/P100/?range=24h")
    [band] = response.context["release_figure"]["layout"]["shapes"]
    start = (now - timedelta(hours=3)).astimezone(p100.tzinfo).replace(tzinfo=None)
    assert band["x0"] == start.isoformat() and band["yref"] == "paper"
    assert "Line 2 changeover" in response.text and "Stocktake" not in response.text
    slo = client.get("/plants/P100/slos/order-release-latency/?range=24h")
    shapes = slo.context["history_figure"]["layout"]["shapes"]
    assert start.isoformat() in [s.get("x0") for s in shapes]
    assert "Line 2 changeover" in slo.text
