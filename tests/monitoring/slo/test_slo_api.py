"""GET /api/v1/slos, /api/v1/slos/{id}, /api/v1/stuck; SLO definitions by admins."""

from datetime import timedelta

import pytest

from monitoring.models import SLO
from tests.monitoring.slo.conftest import NOW, evaluate, hms, release
from tracing.ingest.pipeline import ingest_events

pytestmark = pytest.mark.django_db
FIELDS = {
    "id", "name", "kind", "flow", "plant", "objective", "threshold_seconds", "window_days", "good",
    "total", "attainment", "error_budget_remaining", "burn_rates", "status", "evaluated_at",
}  # fmt: skip


@pytest.fixture
def evaluated(p100, p200, time_machine_now):
    ingest_events(
        release("A", hms("11:58:00"), 30)
        + release("B", hms("11:50:00"), 90)
        + release("Z", hms("11:00:00"), 5, "P200"),
        now=NOW,
    )
    evaluate()


@pytest.fixture
def time_machine_now(monkeypatch):
    """Pin the API's clock to NOW so windows and ranges match the fixtures."""
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: NOW)


def items(api, **params):
    return api.get("/api/v1/slos", params).json()


def test_list_has_one_item_per_slo_and_scope(supervisor_api, evaluated):
    body = items(supervisor_api)
    release_items = [i for i in body if i["name"] == "Order release latency"]
    assert [i["plant"] for i in release_items] == [None, "P100", "P200"]
    overall, p100, _ = release_items
    assert set(overall) >= FIELDS
    assert (overall["good"], overall["total"]) == (2, 3)
    assert overall["attainment"] == pytest.approx(2 / 3)
    assert (p100["good"], p100["total"]) == (1, 2)
    assert (
        p100["objective"] == 0.99 and p100["threshold_seconds"] == 60 and p100["window_days"] == 28
    )
    assert set(p100["burn_rates"]) == {"5m", "30m", "1h", "6h", "3d"}
    assert p100["burn_rates"]["30m"] == pytest.approx(50.0)
    assert p100["status"] == "breaching"
    assert p100["evaluated_at"].startswith("2026-11-23T12:00")
    assert p100["flow"] == "order_release" and p100["kind"] == "latency"
    unevaluated = [i for i in body if i["name"] == "Exception aging"]
    assert unevaluated[0]["plant"] is None and unevaluated[0]["attainment"] is None


def test_detail_adds_series_and_percentiles(supervisor_api, evaluated):
    slo = SLO.objects.get(slug="order-release-latency")
    body = supervisor_api.get(f"/api/v1/slos/{slo.id}", {"plant": "P100"}).json()
    assert body["plant"] == "P100" and body["total"] == 2
    assert sum(p["total"] for p in body["series"]) == 2
    assert body["series"][-1]["at"].startswith("2026-11-23T11:00")
    assert set(body["percentiles"]) == {"p50", "p90", "p95", "p99"}
    assert 30 <= body["percentiles"]["p50"] <= 30 * 1.13
    assert 90 <= body["percentiles"]["p99"] <= 90 * 1.13
    narrow = supervisor_api.get(
        f"/api/v1/slos/{slo.id}",
        {"plant": "P100", "from": "2026-11-23T11:55:00Z", "to": "2026-11-23T12:00:00Z"},
    ).json()
    assert [p["total"] for p in narrow["series"]] == [1]
    assert narrow["percentiles"]["p50"] <= 30 * 1.13


def test_detail_rejects_bad_ranges_naming_the_field(supervisor_api, evaluated):
    slo = SLO.objects.get(slug="order-release-latency")
    assert "plant" in supervisor_api.get(f"/api/v1/slos/{slo.id}", {"plant": "P9"}).json()
    assert "from" in supervisor_api.get(f"/api/v1/slos/{slo.id}", {"from": "soon"}).json()
    response = supervisor_api.get(
        f"/api/v1/slos/{slo.id}", {"from": "2026-11-23T12:00:00Z", "to": "2026-11-23T11:00:00Z"}
    )
    assert response.status_code == 400
    assert supervisor_api.get("/api/v1/slos/9999").status_code == 404


def test_stuck_lists_oldest_first_and_filters(supervisor_api, p100, p200, time_machine_now):
    for corr, hours, plant in (("S1", 3, "P100"), ("S2", 2, "P200"), ("S3", 1, "P100")):
        started = NOW - timedelta(hours=hours)
        ingest_events(release(corr, started, plant=plant), now=started + timedelta(minutes=1))
    ingest_events(release("fresh", NOW - timedelta(minutes=5)), now=NOW)
    body = supervisor_api.get("/api/v1/stuck").json()
    assert [t["correlation_id"] for t in body["results"]] == ["S1", "S2", "S3"]
    assert body["results"][0]["state"] == "stuck"
    assert body["results"][0]["stuck_for_seconds"] == 3 * 3600
    p100_only = supervisor_api.get(
        "/api/v1/stuck", {"plant": "P100", "flow": "order_release"}
    ).json()
    assert [t["correlation_id"] for t in p100_only["results"]] == ["S1", "S3"]


def test_stuck_lists_only_the_readers_plants(p200_supervisor_api, p100, p200, time_machine_now):
    for corr, plant in (("S1", "P100"), ("S2", "P200")):
        started = NOW - timedelta(hours=3)
        ingest_events(release(corr, started, plant=plant), now=started + timedelta(minutes=1))
    body = p200_supervisor_api.get("/api/v1/stuck").json()
    assert [(t["correlation_id"], t["plant"]) for t in body["results"]] == [("S2", "P200")]
    asked_for_p100 = p200_supervisor_api.get("/api/v1/stuck", {"plant": "P100"}).json()
    assert asked_for_p100["results"] == []


def test_admins_define_slos_and_bad_definitions_are_named(admin_api, supervisor_api, p100):
    body = {
        "slug": "goods-receipt-posting",
        "name": "Goods receipt posting",
        "kind": "latency",
        "flow": "goods_receipt",
        "start_milestone": "completed",
        "end_milestones": ["posted"],
        "threshold_seconds": 600,
        "objective": 0.98,
        "plant": "P100",
    }
    assert supervisor_api.post("/api/v1/slos", body, format="json").status_code == 403
    bad = admin_api.post(
        "/api/v1/slos", {**body, "end_milestones": ["shipped"], "objective": 1.5}, format="json"
    )
    assert bad.status_code == 400
    assert {"end_milestones", "objective"} <= set(bad.json())
    created = admin_api.post("/api/v1/slos", body, format="json")
    assert created.status_code == 201, created.content
    slo = SLO.objects.get(slug="goods-receipt-posting")
    assert (slo.plant.code, slo.threshold_seconds, slo.ends) == ("P100", 600, ("posted",))
    changed = admin_api.patch(f"/api/v1/slos/{slo.id}", {"threshold_seconds": 900}, format="json")
    assert changed.json()["threshold_seconds"] == 900
    listed = [i for i in items(admin_api) if i["id"] == slo.id]
    assert [i["plant"] for i in listed] == ["P100"]
    assert admin_api.delete(f"/api/v1/slos/{slo.id}").status_code == 204
    assert not SLO.objects.filter(slug="goods-receipt-posting").exists()


def test_reading_slos_needs_a_person(client, evaluated):
    assert client.get("/api/v1/slos").status_code in (401, 403)
