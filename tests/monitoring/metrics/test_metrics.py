"""GET /metrics: token rules, and the figures after known traffic."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from integration_hub.models import System, WorkerHeartbeat
from monitoring.models import AlertChannel, Delivery, Replay, ReplayAttempt
from monitoring.slo.evaluation import run_evaluation
from tests.events import dead_letter, event, failed

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-for-tests-0123456789"


def scrape(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def test_without_metrics_token_the_path_is_404(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Token {TOKEN}", TOKEN])
def test_a_missing_or_wrong_token_is_401_and_shows_nothing(client, settings, header, p100):
    settings.METRICS_TOKEN = TOKEN
    headers = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"hub_" not in response.content


def test_a_signed_in_admin_without_the_token_gets_nothing(client, settings, alice):
    settings.METRICS_TOKEN = TOKEN
    client.force_login(alice)
    assert client.get("/metrics").status_code == 401


def test_ingest_counts_by_source_plant_and_outcome(client, settings, p100, p200, reporter_key):
    settings.METRICS_TOKEN = TOKEN
    before = scrape(client)
    first, second = event("released"), event("received", source="MES")
    batch = [first, second, first, event("released", flow="nope"), event(plant="P200")]
    response = client.post(
        "/api/v1/events",
        json.dumps({"events": batch}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {reporter_key}",
    )
    assert response.json()["accepted"] == 3
    client.post(
        "/api/v1/events",
        json.dumps(second),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {reporter_key}",
    )
    after = scrape(client)
    name = "hub_ingest_events_total"

    def delta(**labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(source="ERP", plant="P100", outcome="accepted") == 1
    assert delta(source="MES", plant="P100", outcome="accepted") == 1
    assert delta(source="ERP", plant="P200", outcome="accepted") == 1
    assert delta(source="ERP", plant="P100", outcome="duplicate") == 1
    assert delta(source="MES", plant="P100", outcome="duplicate") == 1
    assert delta(source="ERP", plant="P100", outcome="rejected") == 1
    requests = "hub_ingest_request_seconds_count"
    assert value(after, requests, door="events") - value(before, requests, door="events") == 2


def test_rejected_events_with_unregistered_codes_are_labelled_unknown(client, settings, p100):
    from tracing.ingest.pipeline import ingest_events

    settings.METRICS_TOKEN = TOKEN
    before = scrape(client)
    ingest_events([event(source="NOT-A-SYSTEM", plant="NOWHERE"), "not an event"])
    after = scrape(client)
    labels = {"source": "unknown", "plant": "unknown", "outcome": "rejected"}
    name = "hub_ingest_events_total"
    assert value(after, name, **labels) - value(before, name, **labels) == 2


def test_database_figures_after_known_traffic(client, settings, p100, p200):
    settings.METRICS_TOKEN = TOKEN
    now = timezone.now()
    from tracing.ingest.pipeline import ingest_events

    ingest_events(
        [
            event("released", correlation_id="PO-A"),
            event("released", correlation_id="PO-B", at=now - timedelta(hours=5)),
            event("released", correlation_id="PO-C"),
            event("received", correlation_id="PO-C", source="MES"),
            event("acknowledged", correlation_id="PO-C", source="MES"),
            failed("received", correlation_id="PO-D", source="MES", plant="P200"),
        ]
    )
    letter = dead_letter("PO-E", plant="P100")
    mes = System.objects.get(code="MES")
    replay = Replay.objects.create(dead_letter=letter, target=mes, idempotency_key="k-1")
    for number, outcome in enumerate(["retry", "retry", "succeeded"], start=1):
        ReplayAttempt.objects.create(replay=replay, number=number, started_at=now, outcome=outcome)
    channel = AlertChannel.objects.create(name="ops", kind="webhook", url="https://x.example/h")
    for n, state in enumerate(["sent", "sent", "failed"]):
        Delivery.objects.create(
            channel=channel, message_id=f"m{n}", state=state, next_attempt_at=now, created_at=now
        )
    WorkerHeartbeat.objects.create(name="worker", hostname="w1", at=now - timedelta(seconds=42))
    run_evaluation(now)

    samples = scrape(client)
    open_txns = "hub_open_transactions"
    assert value(samples, open_txns, plant="P100", flow="order_release", state="in_flight") == 1
    assert value(samples, open_txns, plant="P100", flow="order_release", state="stuck") == 1
    assert value(samples, open_txns, plant="P100", flow="order_release", state="failed") == 1
    assert value(samples, open_txns, plant="P200", flow="order_release", state="failed") == 1
    assert ("hub_open_transactions", (("flow", "goods_receipt"), ("plant", "P200"),
            ("state", "stuck"))) in samples  # fmt: skip
    assert value(samples, "hub_dead_letters", plant="P100", state="new",
                 error_class="master_data") == 1  # fmt: skip
    assert value(samples, "hub_replay_attempts_total", target="MES", outcome="retry") == 2
    assert value(samples, "hub_replay_attempts_total", target="MES", outcome="succeeded") == 1
    assert value(samples, "hub_alert_deliveries", kind="webhook", outcome="sent") == 2
    assert value(samples, "hub_alert_deliveries", kind="webhook", outcome="failed") == 1
    age = value(samples, "hub_worker_heartbeat_age_seconds", worker="worker")
    assert 42 <= age < 100
    slo = {"slo": "order-release-latency", "plant": "P100"}
    assert value(samples, "hub_slo_objective", **slo) == 0.99
    assert ("hub_slo_error_budget_remaining", tuple(sorted(slo.items()))) in samples
    statuses = [value(samples, "hub_slo_status", **slo, status=s)
                for s in ("ok", "warning", "breaching")]  # fmt: skip
    assert sorted(statuses) == [0, 0, 1]
    assert ("hub_slo_burn_rate", tuple(sorted({**slo, "window": "1h"}.items()))) in samples
    overall = {"slo": "order-release-latency", "plant": "all"}
    assert ("hub_slo_objective", tuple(sorted(overall.items()))) in samples


def test_the_grafana_dashboard_reads_only_metrics_the_hub_exports(client, settings):
    import re
    from pathlib import Path

    settings.METRICS_TOKEN = TOKEN
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    exported = {
        re.sub(r"_total$", "", name)
        for name in re.findall(r"^# TYPE (hub_\w+)", text, re.MULTILINE)
    }
    dashboard = Path(__file__).resolve().parents[3] / "contrib" / "grafana" / "integration-hub.json"
    used = {
        re.sub(r"_(total|bucket)$", "", name)
        for panel in json.loads(dashboard.read_text())["panels"]
        for target in panel["targets"]
        for name in re.findall(r"hub_\w+", target["expr"])
    }
    assert len(used) >= 10
    assert used <= exported, used - exported


def test_the_correlator_backlog_is_exported(client, settings, p100):
    from tracing.ingest.backlog import record_pace
    from tracing.ingest.pipeline import ingest_events

    settings.METRICS_TOKEN = TOKEN
    now = timezone.now()
    ingest_events([event("released"), event("received", source="MW")], now=now, defer=True)
    assert scrape(client)["hub_correlation_pace_events_per_second", ()] == 0  # none measured
    record_pace(folded=3000, seconds=1.5, worker="a")
    record_pace(folded=500, seconds=1.0, worker="b")
    samples = scrape(client)
    assert value(samples, "hub_correlation_queued_events") == 2
    assert ("hub_correlation_lag_seconds", ()) in samples
    assert 0 <= samples["hub_correlation_lag_seconds", ()] < 60
    assert samples["hub_correlation_pace_events_per_second", ()] == 2500
