"""The plant simulator: its events keep the contract, tell linked, reproducible stories, carry
the faults asked for, and reach the API in batches without crashing when it is away."""

import json
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command

from integration_hub.models import ApiKey, Flow, Plant, System
from tracing.ingest.contract import Catalog, validate_event
from tracing.simulator.journeys import Simulator
from tracing.simulator.sender import ApiRefused, Client, Runner, Stats

START = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
FIELDS = {
    "event_id", "correlation_id", "flow", "step", "source", "target", "plant", "status",
    "occurred_at", "business_keys", "error", "payload", "attributes",
}  # fmt: skip
REQUIRED = {"event_id", "correlation_id", "flow", "step", "source", "plant", "occurred_at"}
ERROR_CLASSES = {"transient", "business_rule", "schema", "master_data", "unknown"}
ORDER_FLOWS = {"order_release", "material_consumption", "production_confirmation", "goods_receipt"}


def simulate(orders=30, *, seed=7, fault_rate=0.1, **options):
    sim = Simulator(["P100", "P200"], seed, fault_rate, start=START, **options)
    return list(sim.events(orders))


def transactions(events):
    """Events by (flow, correlation_id), in the order they are sent."""
    grouped = defaultdict(list)
    for _, event in events:
        grouped[event["flow"], event["correlation_id"]].append(event)
    return grouped


def occurred(event):
    return datetime.fromisoformat(event["occurred_at"])


@pytest.fixture
def milestones(db):
    return {f.code: f.milestones for f in Flow.objects.all()}


def test_every_event_passes_the_ingest_contract(p100, p200):
    catalog = Catalog()
    for due, event in simulate(40, fault_rate=0.6):
        _, errors = validate_event(event, catalog=catalog, now=due)
        assert errors is None, (event, errors)


def test_events_keep_each_rule_of_the_contract(milestones):
    systems = set(System.objects.values_list("code", flat=True))
    for due, event in simulate(40, fault_rate=0.6):
        assert REQUIRED <= set(event) <= FIELDS
        assert 1 <= len(event["event_id"]) <= 128 and 1 <= len(event["correlation_id"]) <= 128
        assert event["step"] in milestones[event["flow"]]
        assert {event["source"], event["target"]} <= systems
        assert event["plant"] in {"P100", "P200"}
        assert event["status"] in {"ok", "retrying", "failed", "rejected"}
        assert occurred(event).utcoffset() is not None
        assert occurred(event) <= due, "occurred_at must never be ahead of the sending time"
        keys = event["business_keys"]
        assert len(keys) <= 16 and all(isinstance(v, str) and v for v in keys.values())
        assert len(event.get("attributes", {})) <= 64
        if event["status"] in ("failed", "rejected"):
            assert event["error"]["class"] in ERROR_CLASSES and "payload" in event
        if event["status"] == "retrying":
            assert event["error"]["class"] == "transient"
        if "error" in event:
            assert set(event["error"]) == {"class", "code", "message"}
        json.dumps(event)


def test_events_come_in_due_order():
    dues = [due for due, _ in simulate(40, fault_rate=0.6)]
    assert dues == sorted(dues)


def test_without_faults_every_transaction_completes_in_order(milestones):
    completing = {f.code: set(f.completing_milestones) for f in Flow.objects.all()}
    events = simulate(60, fault_rate=0)
    assert {e["status"] for _, e in events} == {"ok"}
    ids = [e["event_id"] for _, e in events]
    assert len(ids) == len(set(ids))
    txs = transactions(events)
    assert {flow for flow, _ in txs} == set(milestones)
    for (flow, _), tx_events in txs.items():
        steps = [e["step"] for e in tx_events]
        assert completing[flow] & set(steps), (flow, steps)
        assert steps == sorted(steps, key=milestones[flow].index)


def test_an_orders_transactions_share_business_keys():
    by_order = defaultdict(dict)
    for (flow, _), tx_events in transactions(simulate(30, fault_rate=0)).items():
        order = tx_events[0]["business_keys"].get("order")
        if order:
            by_order[order].setdefault(flow, []).append(tx_events[0]["business_keys"])
    assert len(by_order) == 30
    for flows in by_order.values():
        assert set(flows) >= ORDER_FLOWS
        receipt = flows["goods_receipt"][0]
        for hold in flows.get("quality_hold", []):
            assert hold["lot"] == receipt["lot"]
        for shipment in flows.get("shipment_confirmation", []):
            assert shipment["lot"] == receipt["lot"]
            assert shipment["handling_unit"] == receipt["handling_unit"]
        assert "shipment_confirmation" in flows or "quality_hold" in flows


def test_transfers_move_lots_that_production_consumes():
    txs = transactions(simulate(40, fault_rate=0))
    lots = defaultdict(set)
    for (flow, _), tx_events in txs.items():
        lots[flow].add(tx_events[0]["business_keys"].get("lot"))
    assert lots["inventory_movement"] & lots["material_consumption"]


def test_faults_appear_with_a_fault_rate(milestones):
    events = simulate(200, fault_rate=1)
    plain = [e for _, e in events]
    assert {"retrying", "failed", "rejected"} <= {e["status"] for e in plain}
    codes = {e["error"]["code"] for e in plain if "error" in e}
    assert {"M7-021", "ROUTING_NOT_FOUND", "XSD_VALIDATION"} <= codes
    assert codes & {"HTTP_503", "TIMEOUT", "ECONNRESET"}
    late = [e for due, e in events if due - occurred(e) >= timedelta(minutes=2)]
    assert late
    copies = defaultdict(list)
    for event in plain:
        copies[event["event_id"]].append(event)
    duplicated = [c for c in copies.values() if len(c) > 1]
    assert duplicated and all(c[0] == c[1] for c in duplicated)
    txs = transactions(events)
    out_of_order = [
        k
        for k, tx_events in txs.items()
        if [e["step"] for e in tx_events]
        != sorted((e["step"] for e in tx_events), key=milestones[k[0]].index)
    ]
    assert out_of_order
    steps = {k: {e["step"] for e in tx_events} for k, tx_events in txs.items()}
    never_acked = [
        k
        for k, s in steps.items()
        if k[0] == "order_release"
        and "acknowledged" not in s
        and all(e["status"] == "ok" for e in txs[k])
    ]
    assert never_acked
    assert [k for k, s in steps.items() if k[0] == "quality_hold" and len(s) == 2]
    # Reconciliation faults: a hold that never reached WMS, a release WMS never heard of.
    reached = {k: {(e["step"], e.get("target")) for e in tx} for k, tx in txs.items()}
    holds = {k: r for k, r in reached.items() if k[0] == "quality_hold"}
    assert [
        k for k, r in holds.items()
        if {("hold_propagated", "ERP"), ("hold_propagated", "MES")} <= r
        and ("hold_propagated", "WMS") not in r
    ]  # fmt: skip
    assert [
        k for k, r in holds.items() if ("released", "ERP") in r and ("released", "WMS") not in r
    ]


def test_without_faults_every_fan_out_reaches_every_target():
    txs = transactions(simulate(60, fault_rate=0))
    systems = defaultdict(set)
    for (flow, correlation), tx_events in txs.items():
        for e in tx_events:
            systems[flow, correlation, e["step"]] |= {e["source"], e.get("target")}
    consumptions = [k for k in systems if k[0] == "material_consumption" and k[2] == "posted"]
    assert consumptions and all({"ERP", "WMS"} <= systems[k] for k in consumptions)
    holds = [k for k in systems if k[0] == "quality_hold" and k[2] == "hold_propagated"]
    assert holds and all({"ERP", "MES", "WMS"} <= systems[k] for k in holds)
    decisions = [k for k in systems if k[0] == "quality_hold" and k[2] in ("released", "scrapped")]
    assert decisions and all({"QMS", "WMS"} <= systems[k] for k in decisions)


def test_a_retried_posting_is_posted_later(milestones):
    for tx_events in transactions(simulate(200, fault_rate=1)).values():
        for i, event in enumerate(tx_events):
            if event["status"] == "retrying":
                later = [e for e in tx_events[i + 1 :] if e["step"] == event["step"]]
                assert any(e["status"] == "ok" for e in later)
                assert "payload" not in event


def test_the_fault_rate_sets_how_many_transactions_go_wrong():
    def faulty_share(rate):
        txs = transactions(simulate(150, fault_rate=rate, seed=3))
        ids = [e["event_id"] for tx_events in txs.values() for e in tx_events]
        bad = {
            e["event_id"] for tx_events in txs.values() for e in tx_events if e["status"] != "ok"
        }
        return (len(bad) + len(ids) - len(set(ids))) / len(txs)

    assert faulty_share(0.05) < faulty_share(0.3) < faulty_share(0.9)


def test_the_same_seed_gives_the_same_events():
    assert simulate(25, seed=11, fault_rate=0.3) == simulate(25, seed=11, fault_rate=0.3)
    first = {e["event_id"] for _, e in simulate(25, seed=11)}
    other = {e["event_id"] for _, e in simulate(25, seed=12)}
    assert not first & other


def test_the_time_scale_compresses_plant_time_but_not_hop_latency():
    def spans(scale):
        latencies, journeys = [], []
        for (flow, _), tx_events in transactions(
            simulate(40, fault_rate=0, time_scale=scale)
        ).items():
            at = {e["step"]: occurred(e) for e in tx_events}
            if flow == "order_release":
                latencies.append((at["acknowledged"] - at["released"]).total_seconds())
            if flow == "shipment_confirmation":
                journeys.append(at["shipped"])
        return latencies, journeys

    real_latency, _ = spans(1)
    scaled_latency, _ = spans(60)
    assert all(5 <= s <= 250 for s in real_latency) and max(real_latency) > 20
    assert sorted(scaled_latency) == sorted(real_latency)
    events_1 = [occurred(e) for _, e in simulate(40, fault_rate=0, time_scale=1)]
    events_60 = [occurred(e) for _, e in simulate(40, fault_rate=0, time_scale=60)]
    assert (max(events_60) - min(events_60)) < (max(events_1) - min(events_1)) / 5


def test_backdating_puts_a_whole_run_in_the_past():
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    sim = Simulator(["P100"], 5, 0.3, start=now)
    sim.backdate(20, now=now)
    events = list(sim.events(20))
    assert events[-1][0] == now
    assert all(occurred(e) <= due <= now for due, e in events)
    assert [e for _, e in events] == [e for _, e in simulate_at(sim.start)]


def simulate_at(start):
    return list(Simulator(["P100"], 5, 0.3, start=start).events(20))


def test_the_progress_line():
    stats = Stats(started=0, sent=1240, accepted=1198, duplicates=31, rejected=11, orders=62)
    assert stats.line(302.4) == (
        "sent 1,240 events (accepted 1,198, duplicates 31, rejected 11) · 62 orders · 4.1 ev/s"
    )


class FakeClient:
    def __init__(self):
        self.batches = []

    def post(self, events):
        self.batches.append(list(events))
        return {"accepted": len(events) - 1, "duplicates": 1, "rejected": []}


def test_the_runner_sends_in_batches_and_counts_answers():
    client, lines = FakeClient(), []
    runner = Runner(client, out=lines.append, clock=lambda: 0.0)
    events = simulate(30, fault_rate=0)
    stats = runner.run(events, fast=True)
    assert [len(b) for b in client.batches][:-1] == [200] * (len(events) // 200)
    assert sum(len(b) for b in client.batches) == stats.sent == len(events)
    assert stats.duplicates == len(client.batches) and stats.orders == 30


class FakeTime:
    def __init__(self):
        self.t = 0.0

    def clock(self):
        return self.t

    def now(self):
        return START + timedelta(seconds=self.t)

    def sleep(self, seconds):
        self.t += seconds


def test_the_runner_waits_for_due_times_and_stops_at_the_duration():
    client, fake, lines = FakeClient(), FakeTime(), []
    runner = Runner(client, out=lines.append, clock=fake.clock, sleep=fake.sleep, now=fake.now)
    events = simulate(100, fault_rate=0)
    stats = runner.run(events, duration=30)
    sent = [e for batch in client.batches for e in batch]
    due_by_then = [e for due, e in events if due <= START + timedelta(seconds=30)]
    assert 0 < len(sent) <= len(due_by_then) and sent == due_by_then[: len(sent)]
    assert max(len(b) for b in client.batches) < 50, "flushes every 0.5 s, not when full"
    assert stats.sent == len(sent)
    assert lines and all(line.startswith("sent ") for line in lines)


@pytest.fixture
def stub_api():
    """A stand-in for the hub on a free port: answers from `replies`, records what came in."""
    received, replies = [], []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.headers["Authorization"], body["events"]))
            status, answer = replies.pop(0) if replies else (202, None)
            answer = answer or {"accepted": len(body["events"]), "duplicates": 0, "rejected": []}
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(answer).encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received, server.replies = received, replies
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    server.server_close()


def test_the_client_retries_a_server_error_with_backoff(stub_api):
    stub_api.replies.append((503, {"error": "starting"}))
    pauses, warnings = [], []
    client = Client(stub_api.url, "ihk_k", warn=warnings.append, sleep=pauses.append)
    answer = client.post([{"event_id": "e1"}])
    assert answer == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert pauses == [1.0] and "HTTP 503" in warnings[0]
    assert [auth for auth, _ in stub_api.received] == ["Bearer ihk_k"] * 2


def test_the_client_reads_a_400_that_rejected_everything(stub_api):
    rejected = [{"index": 0, "event_id": "e1", "errors": {"flow": ["Unknown flow"]}}]
    stub_api.replies.append((400, {"accepted": 0, "duplicates": 0, "rejected": rejected}))
    client = Client(stub_api.url, "ihk_k", warn=print, sleep=lambda s: None)
    assert client.post([{"event_id": "e1"}])["rejected"] == rejected


def test_the_client_gives_up_on_a_refused_connection_without_crashing(stub_api):
    url = stub_api.url
    stub_api.shutdown()
    stub_api.server_close()
    pauses, warnings = [], []
    client = Client(url, "ihk_k", warn=warnings.append, sleep=pauses.append, attempts=4)
    assert client.post([{"event_id": "e1"}]) is None
    assert pauses == [1.0, 2.0, 4.0] and "gave up" in warnings[-1]


def test_the_client_stops_on_a_refused_key(stub_api):
    stub_api.replies.append((401, {"error": "Unknown or revoked API key."}))
    with pytest.raises(ApiRefused, match="401"):
        Client(stub_api.url, "ihk_bad", sleep=lambda s: None).post([{"event_id": "e1"}])


def test_the_command_sends_n_journeys_with_a_new_key_and_plants(db, stub_api, capsys):
    call_command("simulate", "--url", stub_api.url, "--once", "3", "--seed", "4", "--plants", "P7")
    sent = [e for _, batch in stub_api.received for e in batch]
    assert {e["plant"] for e in sent} == {"P7"}
    assert Plant.objects.get(code="P7").timezone == "Europe/Berlin"
    assert ApiKey.objects.filter(name="simulator").count() == 1
    assert stub_api.received[0][0].startswith("Bearer ihk_")
    now = datetime.now(UTC)
    assert all(occurred(e) <= now for e in sent)
    assert len({e["correlation_id"] for e in sent if e["flow"] == "order_release"}) == 3
    assert f"done: sent {len(sent)} events" in capsys.readouterr().out


def test_the_demo_history_loses_a_hold_and_a_release_on_the_way_to_wms():
    """make demo's history burst (rundemo.HISTORY) shows both kinds of reconciliation."""
    from integration_hub.management.commands.rundemo import HISTORY

    options = dict(zip(HISTORY[::2], HISTORY[1::2], strict=True))
    sim = Simulator(["P100", "P200"], int(options["--seed"]), float(options["--fault-rate"]), 60.0)
    orders = int(options["--once"])
    sim.backdate(orders)
    holds = defaultdict(set)
    for _, e in sim.events(orders):
        if e["flow"] == "quality_hold":
            holds[e["correlation_id"]].add((e["step"], e.get("target")))
    propagated = [s for s in holds.values() if ("hold_propagated", "ERP") in s]
    assert [s for s in propagated if ("hold_propagated", "WMS") not in s]
    assert [s for s in holds.values() if ("released", "ERP") in s and ("released", "WMS") not in s]
