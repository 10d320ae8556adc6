"""A supervisor's flows through the dashboards, in a real browser."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.slo.evaluation import run_evaluation
from tests.browser.conftest import log_in
from tests.events import event
from tracing.ingest.pipeline import ingest_events

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
TILE = 'li[data-slo="order-release-latency"]'


def ago(**delta):
    return timezone.now() - timedelta(**delta)


def release(corr, at, ack_after=None):
    events = [event("released", correlation_id=corr, at=at, event_id=f"{corr}-r")]
    if ack_after is not None:
        at = at + timedelta(seconds=ack_after)
        events.append(
            event("acknowledged", correlation_id=corr, at=at, source="MES", event_id=f"{corr}-a")
        )
    return events


def stuck_goods_receipt(corr):
    """A goods receipt that WMS kept retrying three hours ago, then nothing: stuck."""
    common = {"flow": "goods_receipt", "correlation_id": corr, "business_keys": {"order": "77"}}
    return [
        event("completed", source="MES", target="WMS", at=ago(hours=3), **common),
        event(
            "received",
            source="WMS",
            target="ERP",
            status="retrying",
            error={"class": "transient", "code": "HTTP_503", "message": "ERP unavailable"},
            at=ago(hours=3) + timedelta(seconds=20),
            **common,
        ),
    ]


@pytest.fixture
def healthy_p100(p100, p200):
    events = [e for n in range(6) for e in release(f"PO-OK-{n}", ago(minutes=8 + n), 5)]
    events += stuck_goods_receipt("GR-STUCK-1")
    assert not ingest_events(events).rejected
    run_evaluation()


def test_supervisor_sees_a_tile_turn_breaching_and_follows_a_stuck_count(
    live_server, bob, healthy_p100, settings, page
):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    log_in(page, live_server, "bob", "bob-pw")
    page.click('a.plant-link:has-text("P100")')
    page.wait_for_url("**/plants/P100/")
    tile = page.locator(TILE)
    assert tile.get_attribute("data-state") == "ok"
    assert "OK" in tile.locator(".tile-state").inner_text()
    page.evaluate("window.notReloaded = true")

    # Releases that MES never acknowledges: the tile must turn without a reload.
    faulty = [e for n in range(6) for e in release(f"PO-LATE-{n}", ago(minutes=3))]
    assert not ingest_events(faulty).rejected
    run_evaluation()
    page.wait_for_selector(f'{TILE}[data-state="breaching"]')
    assert "BREACHING" in page.locator(TILE).locator(".tile-state").inner_text().upper()
    assert page.locator("#headline").get_attribute("data-state") == "breaching"
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#release-chart .main-svg").count() > 0  # the Plotly chart is drawn
    # plotly's own style rules come from plotly.css, as no inline style may be added.
    position = "getComputedStyle(document.querySelector('#release-chart .modebar')).position"
    assert page.evaluate(position) == "absolute"

    # Two clicks from the stuck count to the failing hop.
    page.click('tr[data-flow="goods_receipt"] a[data-count="stuck"]')
    page.wait_for_url("**/transactions/?*state=stuck*")
    page.click('a:has-text("GR-STUCK-1")')
    page.wait_for_url("**/transactions/goods_receipt/GR-STUCK-1/?plant=P100")
    assert "Stuck" in page.locator(".txn-head").inner_text()
    page.wait_for_selector("#timeline .main-svg")
    assert "HTTP_503" in page.locator("table.events").inner_text()
    assert page.console_errors == []


def test_another_plants_supervisor_is_refused(live_server, carol, healthy_p100, page):
    log_in(page, live_server, "carol", "carol-pw")
    assert page.locator('tr[data-plant="P200"]').count() == 1
    assert page.locator('tr[data-plant="P100"]').count() == 0
    response = page.goto(f"{live_server.url}/plants/P100/")
    assert response.status == 403
    assert "not assigned to plant P100" in page.inner_text("main")
    assert page.locator(TILE).count() == 0
    response = page.goto(f"{live_server.url}/plants/P100/wall/")
    assert response.status == 403


def test_wall_screen_and_slo_page_draw_in_the_dark_theme(live_server, bob, healthy_p100, page):
    log_in(page, live_server, "bob", "bob-pw")
    page.click("[data-theme-toggle]")
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.goto(f"{live_server.url}/plants/P100/wall/")
    assert page.locator(".topbar").count() == 0  # no navigation on the wall
    assert page.locator(f"{TILE}[data-state=ok]").count() == 1
    page.goto(f"{live_server.url}/plants/P100/slos/order-release-latency/")
    page.wait_for_selector("#history-chart .main-svg")
    page.wait_for_selector("#histogram-chart .main-svg")
    page.click('.segmented a:has-text("7d")')
    page.wait_for_url("**range=7d")
    assert page.locator(".segmented a.current").inner_text() == "7d"
    assert page.console_errors == []
