"""POST /v1/traces with hand-written OTLP/JSON and protobuf: each mapping rule, partial
success, authentication, gzip and the error answers."""

import gzip
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from integration_hub.models import ApiKey, System, SystemAlias
from integration_hub.rate_limits import spend_for_key
from tracing.ingest.otlp import views as otlp_views
from tracing.models import (
    BusinessKey,
    DeadLetter,
    PendingCorrelation,
    TraceEvent,
    Transaction,
)

pytestmark = pytest.mark.django_db
URL = "/v1/traces"
TRACE = "5b8efff798038103d269b633813fc60c"
SPANS = iter(f"{n:016x}" for n in range(1, 10_000))


def nanos(at=None):
    at = at or datetime.now(UTC) - timedelta(minutes=1)
    return str(int(at.timestamp() * 1_000_000) * 1000)


def attr(key, value):
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def span(name="released", *, trace=TRACE, span_id=None, end=None, status=None, **attributes):
    """One OTLP/JSON span; keyword attributes use '__' for '.' (integration__flow)."""
    body = {
        "traceId": trace,
        "spanId": span_id or next(SPANS),
        "name": name,
        "kind": 3,
        "startTimeUnixNano": nanos((end or datetime.now(UTC)) - timedelta(minutes=2)),
        "endTimeUnixNano": nanos(end),
        "attributes": [attr(k.replace("__", "."), v) for k, v in attributes.items()],
    }
    if status:
        body["status"] = status
    return body


def release_span(**overrides):
    fields = {"integration__flow": "order_release", "integration__plant": "P100",
              "integration__target": "MES"}  # fmt: skip
    fields.update(overrides)
    return span(**fields)


def export(*spans, service="ERP", resource_attrs=()):
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr("service.name", service), *resource_attrs]},
                "scopeSpans": [{"scope": {"name": "adapter"}, "spans": list(spans)}],
            }
        ]
    }


@pytest.fixture
def send(client, p100, p200, reporter_key):
    def post(body, *, key=reporter_key, content_type="application/json", **headers):
        data = body if isinstance(body, bytes) else json.dumps(body)
        if key:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        return client.post(URL, data=data, content_type=content_type, **headers)

    return post


# --- mapping rules ----------------------------------------------------------------------------


def test_a_span_becomes_one_trace_event_with_trace_and_span_id(send):
    one = release_span(span_id="00f067aa0ba902b7")
    response = send(export(one))
    assert response.status_code == 200
    assert response.json() == {}
    stored = TraceEvent.objects.get()
    assert stored.event_id == TRACE + "00f067aa0ba902b7"
    assert (stored.flow.code, stored.step, stored.plant.code, stored.target.code) == (
        "order_release", "released", "P100", "MES",
    )  # fmt: skip
    assert stored.source.code == "ERP" and stored.status == "ok"


def test_re_exporting_the_same_spans_stores_nothing_twice(send):
    body = export(release_span(), release_span(name="received", integration__step="received"))
    assert send(body).json() == {}
    assert send(body).json() == {}
    assert TraceEvent.objects.count() == 2
    assert Transaction.objects.get().event_count == 2


def test_correlation_id_is_the_attribute_else_the_trace_id(send):
    send(export(release_span(correlation__id="PO-4711"), release_span(trace="ab" * 16)))
    assert set(Transaction.objects.values_list("correlation_id", flat=True)) == {
        "PO-4711", "ab" * 16,
    }  # fmt: skip


def test_step_is_the_integration_step_else_the_span_name(send):
    send(export(release_span(name="POST /orders", integration__step="received"),
                release_span(name="acknowledged")))  # fmt: skip
    assert sorted(TraceEvent.objects.values_list("step", flat=True)) == ["acknowledged", "received"]


def test_source_is_integration_source_else_service_name_through_aliases(send):
    mes = System.objects.get(code="MES")
    SystemAlias.objects.create(system=mes, alias="mes-adapter-p100")
    send(export(release_span(integration__source="WMS")), service="mes-adapter-p100")
    send(export(release_span(trace="cd" * 16), service="mes-adapter-p100"))
    sources = dict(TraceEvent.objects.values_list("correlation_id", "source__code"))
    assert sources == {TRACE: "WMS", "cd" * 16: "MES"}


def test_an_unknown_service_name_is_rejected_naming_source(send):
    response = send(export(release_span(), service="unregistered-adapter"))
    body = response.json()["partialSuccess"]
    assert body["rejectedSpans"] == 1
    assert "source (integration.source, else resource service.name)" in body["errorMessage"]
    assert "unregistered-adapter" in body["errorMessage"]
    assert TraceEvent.objects.count() == 0


def test_business_key_attributes_become_business_keys_and_the_rest_attributes(send):
    send(export(release_span(business_key__order="1000123", business_key__lot=4711,
                             http__status_code=201, retry=False, ratio=0.5)))  # fmt: skip
    stored = TraceEvent.objects.get()
    assert stored.business_keys == {"order": "1000123", "lot": "4711"}
    assert stored.attributes == {"http.status_code": 201, "retry": False, "ratio": 0.5}
    assert set(BusinessKey.objects.values_list("name", "value")) == {
        ("order", "1000123"), ("lot", "4711"),
    }  # fmt: skip


def test_status_error_is_a_failed_event_with_error_class_code_and_message(send):
    failing = release_span(
        name="received", status={"code": 2, "message": "Routing R-4712-02 not released"},
        error__class="master_data", error__code="ROUTING_NOT_FOUND", integration__source="MES",
    )  # fmt: skip
    send(export(failing))
    stored = TraceEvent.objects.get()
    assert stored.status == "failed"
    assert (stored.error_class, stored.error_code, stored.error_message) == (
        "master_data", "ROUTING_NOT_FOUND", "Routing R-4712-02 not released",
    )  # fmt: skip
    assert stored.attributes is None
    assert Transaction.objects.get().state == "failed"


def test_status_error_without_error_class_is_unknown(send):
    send(export(release_span(status={"code": "STATUS_CODE_ERROR", "message": "timeout"})))
    stored = TraceEvent.objects.get()
    assert (stored.status, stored.error_class, stored.error_message) == ("failed", "unknown",
                                                                         "timeout")  # fmt: skip


def test_occurred_at_is_the_span_end_time(send):
    end = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=678901)
    send(export(release_span(end=end)))
    assert TraceEvent.objects.get().occurred_at == end


# --- partial success --------------------------------------------------------------------------


def test_some_spans_rejected_is_200_with_partial_success_naming_each(send):
    no_plant = span(integration__flow="order_release", end=datetime.now(UTC) + timedelta(hours=1))
    response = send(
        export(release_span(), release_span(integration__flow="order_relase"), no_plant)
    )
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == 2
    message = partial["errorMessage"]
    assert message.startswith("2 of 3 spans rejected.")
    assert "span 1 (" in message
    assert "flow (integration.flow): Unknown flow 'order_relase'" in message
    assert "span 2 (" in message and "plant (integration.plant): This field is required." in message
    assert "occurred_at (endTimeUnixNano)" in message
    assert TraceEvent.objects.count() == 1


def test_a_plant_limited_key_cannot_write_spans_for_another_plant(send, p200):
    key, raw = ApiKey.issue("P200 adapter", plants=[p200])
    response = send(export(release_span(), release_span(integration__plant="P200")), key=raw)
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == 1
    assert "may not report for source ERP at plant P100" in partial["errorMessage"]
    assert list(TraceEvent.objects.values_list("plant__code", flat=True)) == ["P200"]


def test_spans_with_unusable_ids_are_rejected_not_the_request(send):
    response = send(export(release_span(span_id="0000000000000000"), release_span()))
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == 1
    assert "spanId must be 8 bytes, not all zero" in partial["errorMessage"]
    assert TraceEvent.objects.count() == 1


def test_failed_span_leaves_no_dead_letter_without_a_payload(send):
    send(export(release_span(status={"code": 2, "message": "x"}, error__class="transient")))
    assert DeadLetter.objects.count() == 0


# --- protobuf, gzip, authentication and errors ------------------------------------------------


def protobuf(body):
    from google.protobuf import json_format

    from tracing.ingest.otlp.spans import _hex_ids_to_base64

    _hex_ids_to_base64(body, "")
    return json_format.ParseDict(body, ExportTraceServiceRequest()).SerializeToString()


def test_protobuf_bodies_get_protobuf_answers_with_partial_success(send):
    body = protobuf(export(release_span(), release_span(integration__flow="nope")))
    response = send(body, content_type="application/x-protobuf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "Unknown flow 'nope'" in answer.partial_success.error_message
    assert TraceEvent.objects.count() == 1


def test_gzipped_bodies_are_accepted_in_both_encodings(send):
    send(gzip.compress(json.dumps(export(release_span())).encode()), HTTP_CONTENT_ENCODING="gzip")
    send(gzip.compress(protobuf(export(release_span()))), content_type="application/x-protobuf",
         HTTP_CONTENT_ENCODING="gzip")  # fmt: skip
    assert TraceEvent.objects.count() == 2


@pytest.mark.parametrize(
    "key, reason",
    [(None, "Missing API key"), ("ihk_not-a-key", "Unknown or revoked API key")],
)
def test_without_a_valid_key_it_is_401_and_nothing_is_stored(send, key, reason):
    response = send(export(release_span()), key=key)
    assert response.status_code == 401
    assert response.json()["code"] == 16 and reason in response.json()["message"]
    assert TraceEvent.objects.count() == 0


def test_a_revoked_key_is_401(send):
    key, raw = ApiKey.issue("old adapter")
    key.revoke()
    assert send(export(release_span()), key=raw).status_code == 401


def test_x_api_key_header_works_too(send, reporter_key):
    response = send(export(release_span()), key=None, HTTP_X_API_KEY=reporter_key)
    assert response.status_code == 200 and TraceEvent.objects.count() == 1


@pytest.mark.parametrize(
    "body, content_type, reason",
    [
        (b'{"resourceSpans": [', "application/json", "Malformed JSON at line 1"),
        (b"[]", "application/json", "Body must be an object"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
         "application/json", "resourceSpans[0].scopeSpans[0].spans[0].traceId: 'xyz' is not"),
        (b'{"resourceSpans": {"a": 1}}', "application/json", "resourceSpans"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"endTimeUnixNano": "soon"}]}]}]}',
         "application/json", "endTimeUnixNano"),
        (b"\x0a\xff\xff", "application/x-protobuf", "not a protobuf ExportTraceServiceRequest"),
    ],
)  # fmt: skip
def test_malformed_bodies_are_400_with_the_reason(send, body, content_type, reason):
    response = send(body, content_type=content_type)
    assert response.status_code == 400
    if content_type == "application/json":
        assert response.json()["code"] == 3
        assert reason in response.json()["message"]
    else:
        assert reason.encode() in response.content
    assert TraceEvent.objects.count() == 0


def test_unknown_fields_are_ignored_as_the_specification_asks(send):
    body = export(release_span())
    body["resourceSpans"][0]["futureField"] = {"x": 1}
    assert send(body).json() == {} and TraceEvent.objects.count() == 1


def test_other_content_types_are_415(send):
    response = send(b"resourceSpans", content_type="text/plain")
    assert response.status_code == 415
    assert "application/x-protobuf or application/json" in response.json()["message"]


def test_an_unknown_content_encoding_is_415(send):
    response = send(export(release_span()), HTTP_CONTENT_ENCODING="br")
    assert response.status_code == 415 and "Content-Encoding 'br'" in response.json()["message"]


def test_bodies_over_the_limit_are_413(send, settings):
    settings.INGEST_MAX_BODY_BYTES = 1024
    response = send(export(*[release_span() for _ in range(20)]))
    assert response.status_code == 413 and TraceEvent.objects.count() == 0


def test_more_spans_than_a_batch_may_hold_are_413(send, settings):
    settings.INGEST_MAX_EVENTS = 2
    response = send(export(release_span(), release_span(), release_span()))
    assert response.status_code == 413 and "At most 2 spans" in response.json()["message"]


def test_get_is_405(client):
    response = client.get(URL)
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_a_key_over_its_rate_is_429_with_retry_after(send):
    """Spans count against the key's events a second, like events at /api/v1/events."""
    ApiKey.objects.update(events_per_second=1, burst=1)
    assert send(export(release_span())).status_code == 200
    # the bucket spent 30 s ahead, so the next span cannot fit whatever the machine's pace
    spend_for_key(ApiKey.objects.get(), 1, now=time.time() + 30)
    response = send(export(release_span()))
    assert response.status_code == 429
    assert 20 <= int(response["Retry-After"]) <= 32
    assert response.json()["code"] == 8  # RESOURCE_EXHAUSTED
    assert "1 events/s with a burst of 1" in response.json()["message"]
    assert TraceEvent.objects.count() == 1


def test_a_database_that_does_not_answer_is_503_with_retry_after(send, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 refused")

    monkeypatch.setattr(otlp_views, "ingest_events", unreachable)
    response = send(export(release_span()))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["code"] == 14 and "nothing was stored" in response.json()["message"]


def test_spans_wait_with_503_while_deferred_correlation_is_behind(send, settings):
    settings.INGEST_CORRELATION = "deferred"
    PendingCorrelation.objects.create(
        event_pk=1, received_at=datetime.now(UTC) - timedelta(seconds=4)
    )
    response = send(export(release_span()))
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["code"] == 14
    assert "Correlation is 4." in response.json()["message"]
    assert not TraceEvent.objects.exists()
