"""POST /api/v1/events: authentication, body rules, per-event validation, idempotency."""

import gzip
import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integration_hub.models import ApiKey, System
from tests.events import event, failed, sample_events
from tracing.models import BusinessKey, DeadLetter, TraceEvent, Transaction

pytestmark = pytest.mark.django_db
URL = "/api/v1/events"


@pytest.fixture
def post(client, p100, p200, reporter_key):
    def send(body, *, key=reporter_key, content_type="application/json", raw=False, **headers):
        data = body if raw else json.dumps(body)
        if key:
            headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {key}")
        return client.post(URL, data=data, content_type=content_type, **headers)

    return send


def test_samples_are_stored_and_stitched_into_transactions(post):
    response = post({"events": sample_events(datetime.now(UTC))})
    assert response.status_code == 202
    assert response.json() == {"accepted": 17, "duplicates": 0, "rejected": []}
    assert TraceEvent.objects.count() == 17
    assert Transaction.objects.count() == 8
    release = Transaction.objects.get(correlation_id="PO-1000123")
    assert release.state == "completed"
    assert set(release.milestones) == {"released", "received", "acknowledged"}
    assert release.business_keys == {"order": "1000123", "material": "FG-4711"}
    assert release.event_count == 3


def test_a_single_event_object_is_accepted(post):
    response = post(event("released"))
    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert TraceEvent.objects.get().received_at is not None


def test_resending_any_part_of_a_batch_stores_each_event_once(post):
    events = sample_events(datetime.now(UTC))
    post({"events": events})
    response = post({"events": events[5:12] + events[:3]})
    assert response.json() == {"accepted": 0, "duplicates": 10, "rejected": []}
    assert response.status_code == 202
    assert TraceEvent.objects.count() == 17
    assert Transaction.objects.get(correlation_id="PO-1000123").event_count == 3


def test_duplicate_event_ids_inside_one_batch_are_counted_not_stored(post):
    first = event("released")
    again = dict(first, step="received")
    response = post({"events": [first, again, first]})
    assert response.json() == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert TraceEvent.objects.get().step == "released"


def test_x_api_key_header_is_accepted(post, reporter_key):
    response = post(event(), key=None, HTTP_X_API_KEY=reporter_key)
    assert response.status_code == 202
    assert TraceEvent.objects.count() == 1


@pytest.mark.parametrize(
    "headers, message",
    [
        ({}, "Missing API key"),
        ({"HTTP_AUTHORIZATION": "Bearer ihk_nope"}, "Unknown or revoked"),
        ({"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}, "Missing API key"),
    ],
)
def test_missing_or_unknown_key_is_401(post, headers, message):
    response = post(event(), key=None, **headers)
    assert response.status_code == 401
    assert message in response.json()["error"]
    assert not TraceEvent.objects.exists()


def test_a_revoked_key_stops_working(post, reporter_key):
    assert post(event()).status_code == 202
    ApiKey.objects.find(reporter_key).revoke()
    response = post(event())
    assert response.status_code == 401
    assert TraceEvent.objects.count() == 1


def test_key_use_is_recorded(post, reporter_key):
    post(event())
    assert ApiKey.objects.get().last_used_at is not None


def test_key_limited_to_a_system_and_plant_rejects_other_events_with_the_reason(post, p100):
    key, raw = ApiKey.issue("MES P100", systems=[System.objects.get(code="MES")], plants=[p100])
    mine = event("received", source="MES")
    other_system = event("released", source="ERP")
    other_plant = event("received", source="MES", plant="P200", correlation_id="PO-2")
    response = post({"events": [mine, other_system, other_plant]}, key=raw)
    body = response.json()
    assert response.status_code == 202
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1, 2]
    assert (
        "may not report for source ERP at plant P100" in body["rejected"][0]["errors"]["source"][0]
    )
    assert "P200" in body["rejected"][1]["errors"]["source"][0]
    assert list(TraceEvent.objects.values_list("event_id", flat=True)) == [mine["event_id"]]


def test_malformed_json_is_400_naming_the_position(post):
    response = post('{"events": [{"event_id": "a",}]}', raw=True)
    assert response.status_code == 400
    body = response.json()
    assert "Malformed JSON at line 1, column" in body["error"]
    assert body["position"] == 28  # the "}" after the trailing comma


def test_wrong_content_type_is_415(post):
    response = post("event_id=a", raw=True, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


def test_too_many_events_is_413(post, settings):
    settings.INGEST_MAX_EVENTS = 3
    response = post({"events": [event() for _ in range(4)]})
    assert response.status_code == 413
    assert "At most 3 events" in response.json()["error"]
    assert not TraceEvent.objects.exists()


def test_oversize_body_is_413(post, settings):
    settings.INGEST_MAX_BODY_BYTES = 2000
    response = post({"events": [event(payload={"blob": "x" * 3000})]})
    assert response.status_code == 413
    assert not TraceEvent.objects.exists()


def test_gzip_body_is_accepted_and_a_gzip_bomb_is_413(post, settings):
    body = gzip.compress(orjson.dumps({"events": [event(), event()]}))
    response = post(body, raw=True, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 202
    assert response.json()["accepted"] == 2
    settings.INGEST_MAX_BODY_BYTES = 10_000
    bomb = gzip.compress(b'{"events": [' + b" " * 50_000 + b"]}")
    assert len(bomb) < 10_000
    response = post(bomb, raw=True, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413


def test_only_post_is_allowed(client):
    response = client.get(URL)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_all_rejected_is_400_with_the_same_body(post):
    response = post({"events": [{"event_id": "x"}, "not an object"]})
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 0 and body["duplicates"] == 0
    assert body["rejected"][0]["event_id"] == "x"
    assert set(body["rejected"][0]["errors"]) >= {
        "correlation_id",
        "flow",
        "step",
        "source",
        "plant",
        "occurred_at",
    }
    assert body["rejected"][1] == {
        "index": 1,
        "event_id": None,
        "errors": {"non_field_errors": ["Each event must be an object, not str."]},
    }


def future(minutes):
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


@pytest.mark.parametrize(
    "override, field, fragment",
    [
        ({"event_id": ""}, "event_id", "1-128 characters"),
        ({"event_id": "x" * 129}, "event_id", "1-128 characters"),
        ({"event_id": 17}, "event_id", "Must be a string"),
        ({"correlation_id": None}, "correlation_id", "required"),
        ({"flow": "order_relase"}, "flow", "valid: goods_receipt, inventory_movement"),
        ({"step": "shipped"}, "step", "valid: released, received, acknowledged"),
        ({"source": "SAP"}, "source", "valid: ERP, HUB, MES, MW, QMS, WMS"),
        ({"target": 7}, "target", "Must be a string code"),
        ({"plant": "P999"}, "plant", "valid: P100, P200"),
        ({"status": "done"}, "status", "ok, retrying, failed, rejected"),
        ({"occurred_at": "yesterday"}, "occurred_at", "not RFC 3339"),
        ({"occurred_at": "2026-11-20T06:00:00"}, "occurred_at", "UTC offset"),
        ({"occurred_at": 1763618400}, "occurred_at", "RFC 3339 string"),
        # a day ahead: the parameters are made when the suite is collected, minutes earlier
        ({"occurred_at": future(24 * 60)}, "occurred_at", "more than 5 minutes ahead"),
        ({"business_keys": {"order": 4711}}, "business_keys", "must be a string"),
        ({"business_keys": ["order"]}, "business_keys", "Must be an object"),
        ({"business_keys": {f"k{i}": "v" for i in range(17)}}, "business_keys", "At most 16"),
        ({"attributes": {f"a{i}": i for i in range(65)}}, "attributes", "At most 64"),
        ({"attributes": "x"}, "attributes", "Must be an object"),
        ({"status": "failed"}, "error", "Required when status is failed"),
        (
            {"status": "rejected", "error": {"class": "oops", "message": "m"}},
            "error",
            "class must be one of",
        ),
        ({"payload": {"blob": "x" * (256 * 1024)}}, "payload", "At most 256 KiB"),
        ({"payload": {"text": "nul \u0000 here"}}, "payload", "NUL"),
        ({"correlation_id": "PO\u00001"}, "correlation_id", "NUL"),
        ({"ocurred_at": "typo"}, "non_field_errors", "Unknown fields ocurred_at"),
    ],
)
def test_invalid_event_is_rejected_naming_the_field(post, override, field, fragment):
    good = event("released", correlation_id="PO-good")
    bad = event("released", correlation_id="PO-bad")
    bad.update(override)
    response = post({"events": [good, bad]})
    body = response.json()
    assert response.status_code == 202
    assert body["accepted"] == 1
    assert len(body["rejected"]) == 1
    rejected = body["rejected"][0]
    assert rejected["index"] == 1
    assert fragment in " ".join(rejected["errors"][field]), rejected["errors"]
    assert list(Transaction.objects.values_list("correlation_id", flat=True)) == ["PO-good"]


def test_an_event_with_several_errors_reports_all_of_them(post):
    bad = event(flow="order_release", step="nope", plant="P9", source="X", status="failed")
    body = post({"events": [bad]}).json()
    assert set(body["rejected"][0]["errors"]) == {"step", "plant", "source", "error"}


def test_unicode_is_kept_as_sent(post):
    keys = {"material": "Schraube M8×40 – verzinkt", "lot": "ロット-42"}
    ev = event(business_keys=keys, payload={"text": "Prüfung bestanden ✓"}, correlation_id="PO-ü")
    assert post({"events": [ev]}).json()["accepted"] == 1
    stored = TraceEvent.objects.get()
    assert stored.business_keys == keys
    assert stored.payload == {"text": "Prüfung bestanden ✓"}
    assert Transaction.objects.get().correlation_id == "PO-ü"


def test_occurred_at_a_little_ahead_is_accepted_and_received_at_is_server_time(post):
    ev = event(at=datetime.now(UTC) + timedelta(minutes=4))
    before = datetime.now(UTC)
    assert post(ev).json()["accepted"] == 1
    stored = TraceEvent.objects.get()
    assert stored.received_at >= before
    assert stored.occurred_at > stored.received_at


def test_failed_event_with_payload_becomes_a_dead_letter_and_without_payload_not(post):
    with_payload = failed(
        "received", code="ROUTING_NOT_FOUND", message="Routing R-4712-02 missing", payload={"a": 1}
    )
    without = failed("received", correlation_id="PO-2")
    post({"events": [with_payload, without]})
    letter = DeadLetter.objects.get()
    assert letter.external_id == with_payload["event_id"]
    assert letter.payload == {"a": 1}
    assert letter.error_code == "ROUTING_NOT_FOUND"
    assert letter.transaction.correlation_id == "PO-1"
    assert letter.state == "new"


def test_business_keys_are_indexed_for_search(post):
    post({"events": sample_events(datetime.now(UTC))})
    order_txns = BusinessKey.objects.filter(name="order", value="1000123").values_list(
        "transaction__flow__code", flat=True
    )
    assert sorted(order_txns) == [
        "goods_receipt",
        "material_consumption",
        "order_release",
        "production_confirmation",
    ]


def test_ingest_batch_runs_a_fixed_number_of_queries(
    p100, reporter_key, django_assert_max_num_queries
):
    from tracing.ingest.pipeline import ingest_events

    events = [event(correlation_id=f"PO-{i}", business_keys={"order": str(i)}) for i in range(200)]
    events += [failed("received", correlation_id=f"PO-{i}", payload={"i": i}) for i in range(50)]
    # 16: the catalog's stamp, and the catalog (read afresh here: the fixtures wrote it), whose
    # flows' target systems (fan-out milestones) are one query.
    with django_assert_max_num_queries(16):
        result = ingest_events(events)
    assert result.accepted == 250
    assert Transaction.objects.count() == 200


def test_a_batch_reads_the_key_and_the_catalog_stamp_and_the_catalog_only_when_changed(post, p100):
    """The key with its allowed systems and plants (one query), the catalog's stamp, and,
    when the stamp changed since this process read it, the flows, their target systems
    (fan-out milestones), and the systems and plants: whatever the batch size."""
    key, raw = ApiKey.issue("ERP P100", systems=[System.objects.get(code="ERP")], plants=[p100])
    events = [event(correlation_id=f"PO-{i}") for i in range(50)]

    def reads(body):
        with CaptureQueriesContext(connection) as queries:
            response = post(body, key=raw)
        assert response.status_code == 202, response.content
        return response.json(), [
            q["sql"]
            for q in queries.captured_queries
            if q["sql"].lstrip("(").startswith("SELECT") and ' FROM "integration_hub_' in q["sql"]
            and "integration_hub_downtime" not in q["sql"]  # the stuck clock's calendar
        ]  # fmt: skip

    System.objects.filter(code="MES").update(name="MES (changed)")  # a new stamp
    answer, first = reads({"events": events + [event(source="MES")]})
    assert answer["accepted"] == 50
    assert "may not report for source MES" in answer["rejected"][0]["errors"]["source"][0]
    assert len(first) == 5, first
    answer, again = reads({"events": [event(correlation_id="PO-again")]})
    assert answer["accepted"] == 1
    assert len(again) == 2, again
    assert "integration_hub_catalogstamp" in again[1]
