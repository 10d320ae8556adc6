"""The real OpenTelemetry SDK and its OTLP/HTTP exporter against a live hub."""

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Status, StatusCode

from integration_hub.models import System, SystemAlias
from tracing.models import DeadLetter, TraceEvent, Transaction

# The live server needs committed rows; keep the seeded catalog for the tests after these.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def adapter_spans(provider):
    """What an MES adapter instrumented with the SDK reports for one production order."""
    tracer = provider.get_tracer("mes-adapter")
    common = {"integration.flow": "order_release", "integration.plant": "P100",
              "correlation.id": "PO-1000123", "business_key.order": "1000123"}  # fmt: skip
    with tracer.start_as_current_span("receive order", attributes=common) as span:
        span.set_attribute("integration.step", "received")
        span.set_attribute("mes.line", "L2")
    with tracer.start_as_current_span("acknowledge", attributes=common) as span:
        span.set_attribute("integration.step", "acknowledged")
        span.set_attribute("error.class", "master_data")
        span.set_attribute("error.code", "MATERIAL_UNKNOWN")
        span.set_status(Status(StatusCode.ERROR, "Material M-77 unknown in MES"))


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.NoCompression])
def test_sdk_exporter_round_trip(live_server, p100, reporter_key, monkeypatch, compression):
    SystemAlias.objects.create(system=System.objects.get(code="MES"), alias="mes-adapter")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer {reporter_key}")
    exporter = OTLPSpanExporter(endpoint=f"{live_server.url}/v1/traces", compression=compression)
    provider = TracerProvider(resource=Resource.create({"service.name": "mes-adapter"}))
    captured = []
    provider.add_span_processor(_Collect(captured))
    adapter_spans(provider)
    assert exporter.export(captured) == SpanExportResult.SUCCESS
    assert exporter.export(captured) == SpanExportResult.SUCCESS  # a retry stores nothing twice
    events = list(TraceEvent.objects.order_by("occurred_at"))
    assert [(e.step, e.status, e.source.code) for e in events] == [
        ("received", "ok", "MES"), ("acknowledged", "failed", "MES"),
    ]  # fmt: skip
    first = captured[0].context
    assert events[0].event_id == f"{first.trace_id:032x}{first.span_id:016x}"
    assert events[0].attributes == {"mes.line": "L2"}
    assert events[1].error_message == "Material M-77 unknown in MES"
    txn = Transaction.objects.get()
    assert (txn.correlation_id, txn.state, txn.business_keys) == (
        "PO-1000123", "failed", {"order": "1000123"},
    )  # fmt: skip
    assert DeadLetter.objects.count() == 0


def test_sdk_exporter_with_a_bad_key_fails(live_server, p100, reporter_key):
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces", headers={"Authorization": "Bearer ihk_wrong"}
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "ERP"}))
    captured = []
    provider.add_span_processor(_Collect(captured))
    adapter_spans(provider)
    assert exporter.export(captured) == SpanExportResult.FAILURE
    assert TraceEvent.objects.count() == 0


class _Collect:
    """A span processor that keeps finished spans, so the test exports them itself."""

    def __init__(self, into):
        self.into = into

    def on_start(self, span, parent_context=None):
        pass

    def on_end(self, span):
        self.into.append(span)

    def _on_ending(self, span):
        pass

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True
