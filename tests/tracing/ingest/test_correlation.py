"""Correlation rules: milestones, failures and their clearing, completion, stuck, any order."""

from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.events import event, failed
from tests.tracing.ingest.journey import JOURNEY, NOW, at, row_of
from tracing.ingest.pipeline import ingest_events
from tracing.models import BusinessKey, TraceEvent, Transaction
from tracing.transactions.stuck import mark_stuck

pytestmark = pytest.mark.django_db


def txn():
    return Transaction.objects.get()


def test_milestones_keep_the_first_time_reached_whatever_the_arrival_order(p100):
    ingest_events([event("acknowledged", at=at(40), source="MES")], now=NOW)
    ingest_events([event("released", at=at(0)), event("received", at=at(2), source="MW")], now=NOW)
    ingest_events([event("released", at=at(-5), event_id="late-resend")], now=NOW)
    t = txn()
    assert t.milestones == {
        "acknowledged": at(40).isoformat(),
        "released": at(-5).isoformat(),
        "received": at(2).isoformat(),
    }
    assert (t.first_seen, t.last_seen, t.event_count) == (at(-5), at(40), 4)
    assert t.state == "completed"
    assert t.completed_at == at(40)


def test_a_failure_makes_it_failed_with_the_last_error(p100):
    ingest_events(
        [event("released", at=at(0)), failed("received", at=at(2), code="ROUTING_NOT_FOUND")],
        now=NOW,
    )
    t = txn()
    assert t.state == "failed"
    assert t.last_error["code"] == "ROUTING_NOT_FOUND"
    assert t.last_error["step"] == "received"


def test_a_later_ok_at_the_same_or_a_later_milestone_clears_the_failure(p100):
    ingest_events([event("released", at=at(0)), failed("received", at=at(2))], now=NOW)
    ingest_events([event("received", at=at(30), source="MW")], now=NOW)
    assert txn().state == "in_flight"
    assert txn().last_error["step"] == "received"  # history kept, state cleared


def test_an_ok_at_an_earlier_milestone_does_not_clear_it(p100):
    ingest_events([failed("received", at=at(2)), event("released", at=at(30))], now=NOW)
    assert txn().state == "failed"


def test_an_ok_that_happened_before_the_failure_does_not_clear_it(p100):
    ingest_events(
        [failed("received", at=at(20)), event("acknowledged", at=at(10), source="MES")], now=NOW
    )
    assert txn().state == "failed"


def test_retrying_is_neither_a_milestone_nor_a_failure(p100):
    ingest_events(
        [
            event("released", at=at(0)),
            failed("received", at=at(1), status="retrying", error_class="transient"),
        ],
        now=NOW,
    )
    t = txn()
    assert t.state == "in_flight"
    assert "received" not in t.milestones


def test_completion_comes_from_any_completing_milestone(p100):
    hold = {"flow": "quality_hold", "source": "QMS", "target": "ERP", "correlation_id": "NC-1"}
    ingest_events(
        [event("hold_applied", at=at(0), **hold), event("scrapped", at=at(60), **hold)], now=NOW
    )
    assert txn().state == "completed"


def test_open_past_the_stuck_deadline_reads_stuck_and_beat_marks_it(p100):
    ingest_events([event("released", at=at(0))], now=at(60))
    t = txn()
    assert t.state == "in_flight"
    later = at(0) + timedelta(minutes=31)  # order_release is stuck after 30 minutes
    assert t.current_state(later) == "stuck"
    assert list(Transaction.objects.in_state("stuck", later)) == [t]
    assert not Transaction.objects.in_state("in_flight", later).exists()
    assert mark_stuck(at(60)) == 0
    assert mark_stuck(later) == 1
    assert txn().state == "stuck"
    ingest_events([event("acknowledged", at=at(90), source="MES")], now=later)
    assert txn().state == "completed"


def test_each_plants_events_make_that_plants_transaction(p100, p200):
    ingest_events([event("received", at=at(5), plant="P200", source="MW")], now=NOW)
    ingest_events([event("released", at=at(0), plant="P100")], now=NOW)
    by_plant = {t.plant.code: t.event_count for t in Transaction.objects.select_related("plant")}
    assert by_plant == {"P100": 1, "P200": 1}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.permutations(range(len(JOURNEY))),
    repeats=st.lists(st.integers(0, len(JOURNEY) - 1), max_size=6),
    cuts=st.lists(st.integers(1, len(JOURNEY) + 6), max_size=3),
)
def test_any_permutation_and_duplication_gives_the_same_transaction(p100, order, repeats, cuts):
    Transaction.objects.all().delete()
    ingest_events(JOURNEY, now=NOW)
    expected = row_of(txn())
    Transaction.objects.all().delete()
    arrivals = [JOURNEY[i] for i in order] + [JOURNEY[i] for i in repeats]
    bounds = sorted({0, len(arrivals), *[c for c in cuts if c < len(arrivals)]})
    for start, end in zip(bounds, bounds[1:], strict=False):
        ingest_events(arrivals[start:end], now=NOW)
    assert row_of(txn()) == expected
    assert expected["state"] == "completed"
    assert expected["business_keys"] == {"order": "1", "material": "FG-1", "lot": "L1"}
    assert expected["event_count"] == 7


def test_a_new_transaction_is_built_with_every_field_the_model_would_give_it():
    """The ingest path builds new transactions without Model.__init__ (it is the costliest
    step per row); a field added to Transaction must not be missing from them."""
    from types import SimpleNamespace

    from tracing.ingest.rows import new_transaction

    flow = SimpleNamespace(id=7, stuck_after=timedelta(minutes=30))
    event = SimpleNamespace(
        flow=flow, correlation_id="PO-1", plant_id=3, occurred_at=NOW, event_id="e-1"
    )
    built = new_transaction(event, NOW + timedelta(seconds=1))
    expected = Transaction(
        flow_id=7, correlation_id="PO-1", plant_id=3, state="in_flight", first_seen=NOW,
        last_seen=NOW, first_event_id="e-1", stuck_at=NOW + timedelta(minutes=30),
        event_count=0, updated_at=NOW + timedelta(seconds=1),
    )  # fmt: skip
    names = [f.attname for f in Transaction._meta.concrete_fields]
    assert {n: getattr(built, n) for n in names} == {n: getattr(expected, n) for n in names}
    assert built.business_keys is not new_transaction(event, NOW).business_keys  # not shared
    assert built._state.adding and built._state.db is None


def test_business_keys_of_new_and_known_transactions_are_indexed_once(p100):
    ingest_events([event(correlation_id="PO-1", business_keys={"order": "1"})])
    ingest_events(
        [
            event("received", correlation_id="PO-1", business_keys={"order": "1", "lot": "L-9"}),
            event(correlation_id="PO-2", business_keys={"order": "2", "material": "FG-1"}),
            event("received", correlation_id="PO-2", business_keys={"order": "2"}),
        ]
    )
    keys = BusinessKey.objects.values_list("transaction__correlation_id", "name", "value")
    assert sorted(keys) == [
        ("PO-1", "lot", "L-9"), ("PO-1", "order", "1"),
        ("PO-2", "material", "FG-1"), ("PO-2", "order", "2"),
    ]  # fmt: skip


def test_times_reported_with_an_offset_are_stored_and_folded_as_the_same_instant(p100):
    local = "2026-03-29T04:30:00.123456+05:30"  # microseconds, not UTC
    instant = datetime.fromisoformat(local)
    ingest_events([event("released", at=local), failed("received", at=local)], now=NOW)
    events = TraceEvent.objects.order_by("step")
    assert [(e.occurred_at, e.received_at) for e in events] == [(instant, NOW)] * 2
    t = txn()
    assert t.milestones == {"released": "2026-03-28T23:00:00.123456+00:00"}
    assert datetime.fromisoformat(t.last_error["at"]) == instant
    assert t.last_error["at"] == "2026-03-28T23:00:00.123456+00:00"
