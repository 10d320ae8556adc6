"""Reading transactions through the API: filters, cursor pages, detail with events."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.events import event, sample_events
from tracing.ingest.pipeline import ingest_events

pytestmark = pytest.mark.django_db
URL = "/api/v1/transactions"


@pytest.fixture
def loaded(p100, p200):
    now = datetime.now(UTC)
    ingest_events(sample_events(now), now=now)
    return now


def ids(response):
    return [(t["flow"], t["correlation_id"]) for t in response.json()["results"]]


def test_reading_needs_a_person(client, loaded, reporter_key):
    assert client.get(URL).status_code in (401, 403)
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {reporter_key}").status_code in (401, 403)


def test_list_is_newest_first_with_the_documented_shape(supervisor_api, loaded):
    body = supervisor_api.get(URL).json()
    assert set(body) == {"next", "previous", "results"}
    results = body["results"]
    assert len(results) == 8
    last_seen = [r["last_seen"] for r in results]
    assert last_seen == sorted(last_seen, reverse=True)
    release = next(r for r in results if r["correlation_id"] == "PO-1000123")
    assert {
        "flow",
        "correlation_id",
        "plant",
        "state",
        "business_keys",
        "first_seen",
        "last_seen",
        "milestones",
        "last_error",
        "event_count",
    } <= set(release)
    assert release["plant"] == "P100"
    assert release["state"] == "completed"
    assert list(release["milestones"]) == ["released", "received", "acknowledged"]


@pytest.mark.parametrize(
    "query, expected",
    [
        (
            "?plant=P200",
            {("inventory_movement", "TO-551300"), ("shipment_confirmation", "DLV-80011234")},
        ),
        ("?flow=order_release&state=failed", {("order_release", "PO-1000124")}),
        ("?correlation_id=CF-88412-10", {("production_confirmation", "CF-88412-10")}),
        ("?key=delivery:80011234", {("shipment_confirmation", "DLV-80011234")}),
        (
            "?key=lot:FG-24-0912",
            {("goods_receipt", "GR-1000123-1"), ("quality_hold", "NC-2026-0412")},
        ),
        ("?q=HU-00045512", {("goods_receipt", "GR-1000123-1")}),
        # the transactions the system reported in (where a silent system was last heard of)
        ("?system=QMS", {("quality_hold", "NC-2026-0412")}),
        (
            "?system=WMS&plant=P100",
            {("goods_receipt", "GR-1000123-1")},
        ),
        (
            "?state=in_flight&plant=P100",
            {("goods_receipt", "GR-1000123-1"), ("quality_hold", "NC-2026-0412")},
        ),
    ],
)
def test_filters(supervisor_api, loaded, query, expected):
    assert set(ids(supervisor_api.get(URL + query))) == expected


def test_filter_by_business_key_finds_the_orders_journey(supervisor_api, loaded):
    flows = sorted(flow for flow, _ in ids(supervisor_api.get(URL + "?key=order:1000123")))
    assert flows == [
        "goods_receipt",
        "material_consumption",
        "order_release",
        "production_confirmation",
    ]


def test_time_range(supervisor_api, loaded):
    later = (loaded + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert ids(supervisor_api.get(URL, {"from": later})) == []
    early = (loaded - timedelta(minutes=5)).isoformat()
    recent = ids(supervisor_api.get(URL, {"from": early}))
    assert ("shipment_confirmation", "DLV-80011234") in recent
    assert ("inventory_movement", "TO-551300") not in recent


def test_bad_filter_is_400_naming_it(supervisor_api, loaded):
    response = supervisor_api.get(URL, {"from": "last tuesday"})
    assert response.status_code == 400
    assert "from" in response.json()
    response = supervisor_api.get(URL, {"state": "lost"})
    assert response.status_code == 400
    assert "in_flight" in response.json()["state"][0]


def test_cursor_pages_cover_everything_once(supervisor_api, p100):
    base = datetime.now(UTC) - timedelta(minutes=30)
    ingest_events(
        [event(correlation_id=f"PO-{i}", at=base + timedelta(seconds=i)) for i in range(120)]
    )
    seen, url = [], URL + "?page_size=50"
    while url:
        body = supervisor_api.get(url).json()
        seen += [r["correlation_id"] for r in body["results"]]
        url = body["next"]
    assert seen == [f"PO-{i}" for i in reversed(range(120))]


def test_detail_has_events_in_time_order_as_sent(supervisor_api, loaded):
    body = supervisor_api.get(f"{URL}/production_confirmation/CF-88412-10").json()
    assert body["state"] == "completed"
    assert [e["event_id"] for e in body["events"]] == [
        "mes-conf-88412-10",
        "mw-conf-88412-10-try1",
        "erp-conf-88412-10",
    ]
    retry = body["events"][1]
    assert retry["status"] == "retrying"
    assert retry["error"] == {
        "class": "transient",
        "code": "HTTP_503",
        "message": "ERP OData service unavailable (request 7f3c9a1e-22b1-4d0e-9a7e-3c1f0b2d9e44)",
    }
    assert "payload" not in retry and "received_at" in retry
    assert body["events"][0]["payload"]["Confirmation"]["Yield"] == 120
    assert body["events"][2]["attributes"] == {"confirmation_counter": "00000457"}
    related = {(r["flow"], r["correlation_id"]) for r in body["related"]}
    assert ("order_release", "PO-1000123") in related


def test_unknown_transaction_is_404(supervisor_api, loaded):
    assert supervisor_api.get(f"{URL}/order_release/NOPE").status_code == 404
