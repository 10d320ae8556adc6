"""An SLO never reads OK while what it measures is on fire: a spent error budget breaches
whatever the recent burn, items overdue now keep an age SLO at warning until they close, and
the status comes with one sentence saying why."""

from datetime import timedelta

import pytest

from monitoring.models import SLOStatus
from tests.events import event
from tests.monitoring.slo.conftest import NOW, evaluate
from tracing.ingest.pipeline import ingest_events

pytestmark = pytest.mark.django_db
HOLD = {"flow": "quality_hold", "source": "QMS", "target": "ERP"}


def hold(corr, applied, released_after=None):
    events = [event("hold_applied", correlation_id=corr, at=applied, **HOLD)]
    if released_after is not None:
        events.append(event("released", correlation_id=corr, at=applied + released_after, **HOLD))
    return events


def holds_status():
    return SLOStatus.objects.get(slo__slug="stuck-quality-holds", plant__code="P100")


def test_four_holds_stuck_for_days_breach_though_the_recent_burn_is_calm(client, alice, p100):
    """The issue's case: they went bad before the 3-day burn window, the budget is long spent."""
    events = []
    for n in range(4):
        events += hold(f"NC-STUCK-{n}", NOW - timedelta(days=4, minutes=n))
    for n in range(6):
        events += hold(f"NC-OK-{n}", NOW - timedelta(days=2, hours=n), timedelta(hours=1))
    ingest_events(events, now=NOW)
    evaluate()
    status = holds_status()
    assert (status.good, status.total) == (6, 10)
    assert status.error_budget_remaining == pytest.approx(1 - 4 / 0.5)  # -700 %
    assert max(status.burn_rates.values()) == 0  # nothing went bad in the last 3 days
    assert status.overdue == 4
    assert status.status == "breaching"
    assert status.reason == (
        "Breaching: the error budget of the 28-day window is spent (-700 % left), "
        "and 4 items are overdue now."
    )
    client.force_login(alice)
    headline = client.get("/plants/P100/").text.split('id="headline"', 1)[1][:800]
    assert "Stuck quality holds</a>: the error budget of the 28-day window is spent" in headline


def test_an_overdue_item_keeps_an_age_slo_at_warning_until_it_closes(client, alice, p100):
    events = hold("NC-LATE", NOW - timedelta(days=5))
    for n in range(40):
        events += hold(f"NC-{n}", NOW - timedelta(days=1, minutes=n), timedelta(minutes=30))
    ingest_events(events, now=NOW)
    evaluate()
    status = holds_status()
    assert status.attainment == pytest.approx(40 / 41) and status.error_budget_remaining > 0.5
    assert (status.status, status.overdue) == ("warning", 1)
    assert status.reason == (
        "Warning: 1 item is past the threshold and still open; it stays at warning until "
        "they close."
    )
    client.force_login(alice)
    page = client.get("/plants/P100/slos/stuck-quality-holds/").text
    assert 'id="status-reason">Warning: 1 item is past the threshold' in page

    later = NOW + timedelta(minutes=5)
    ingest_events(hold("NC-LATE", NOW - timedelta(days=5), timedelta(days=5)), now=later)
    evaluate(later)
    status = holds_status()
    assert (status.status, status.overdue) == ("ok", 0)
    assert status.reason.startswith("OK: 97.56 % good against an objective of 95 %")
    assert status.reason.endswith("no fast burn, nothing overdue.")


def test_an_item_overdue_since_before_the_window_is_not_no_data(client, alice, p100):
    ingest_events(hold("NC-ANCIENT", NOW - timedelta(days=40)), now=NOW)
    evaluate()
    status = holds_status()
    assert (status.total, status.overdue, status.status) == (0, 1, "warning")
    client.force_login(alice)
    tiles = client.get("/plants/P100/").text
    tile = tiles[tiles.index('data-slo="stuck-quality-holds"') :][:400]
    assert 'data-state="warning"' in tile


def test_the_api_states_the_reason(admin_api, p100):
    ingest_events(hold("NC-1", NOW - timedelta(days=5)), now=NOW)
    evaluate()
    items = admin_api.get("/api/v1/slos").json()
    body = next(i for i in items if i["slug"] == "stuck-quality-holds" and i["plant"] == "P100")
    assert body["overdue"] == 1 and body["status"] == "breaching"  # 1 bad of 1: budget spent
    assert body["reason"].endswith("spent (-1900 % left), and 1 item is overdue now.")
