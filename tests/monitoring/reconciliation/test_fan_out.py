"""Fan-out per target: a quality hold is only propagated when ERP, MES and WMS all have it; one
that reached some and not others past the flow's tolerance (15 min) is a reconciliation
exception, which closes itself when the missing event arrives."""

from datetime import UTC, datetime, timedelta

import pytest

from integration_hub.models import Downtime, Flow, System
from monitoring.models import ReconciliationException
from monitoring.reconciliation.run import reconcile
from tests.events import event, failed
from tracing.dead_letters.superseded import mark_superseded
from tracing.ingest.pipeline import ingest_events
from tracing.models import DeadLetter, Transaction

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LOT = {"lot": "L-26-737953", "nonconformance": "NC-1"}


def hold(step, target, at, **fields):
    fields.setdefault("source", "MW" if step == "hold_propagated" else "QMS")
    return event(
        step,
        flow="quality_hold",
        correlation_id="NC-1",
        target=target,
        at=at,
        business_keys=LOT,
        **fields,
    )


def send(*events):
    result = ingest_events(list(events), now=T0 + timedelta(minutes=30))
    assert not result.rejected, result.rejected


def hold_txn():
    return Transaction.objects.get(correlation_id="NC-1")


def test_a_fan_out_milestone_is_reached_only_when_every_target_has_it(p100):
    send(
        hold("hold_applied", "ERP", T0),
        hold("hold_propagated", "ERP", T0 + timedelta(seconds=20)),
        hold("hold_propagated", "MES", T0 + timedelta(seconds=40)),
    )
    txn = hold_txn()
    erp, mes, wms = (str(System.objects.get(code=c).id) for c in ("ERP", "MES", "WMS"))
    mw = str(System.objects.get(code="MW").id)
    assert set(txn.milestone_systems["hold_propagated"]) == {erp, mes, mw}
    assert txn.partial_since == T0 + timedelta(seconds=20)
    send(hold("hold_propagated", "WMS", T0 + timedelta(seconds=90)))
    txn = hold_txn()
    assert wms in txn.milestone_systems["hold_propagated"]
    assert txn.partial_since is None


def test_consumption_completes_when_erp_and_wms_both_posted(p100):
    def consumption(step, source, target, seconds):
        return event(
            step,
            flow="material_consumption",
            correlation_id="GI-1",
            source=source,
            target=target,
            at=T0 + timedelta(seconds=seconds),
            business_keys={"order": "1", "lot": "L-1"},
        )

    send(consumption("consumed", "MES", "ERP", 0), consumption("posted", "ERP", "MES", 9))
    txn = Transaction.objects.get(correlation_id="GI-1")
    assert (txn.state, txn.completed_at) == ("in_flight", None)  # ERP only: not done
    send(consumption("posted", "WMS", "MES", 30))
    txn.refresh_from_db()
    # Done when the last target (WMS, at +30 s) posted, not when the first did (+9 s).
    assert (txn.state, txn.completed_at) == ("completed", T0 + timedelta(seconds=30))


def test_a_hold_missing_wms_past_the_tolerance_is_an_exception_until_wms_gets_it(p100):
    send(
        hold("hold_applied", "ERP", T0),
        hold("hold_propagated", "ERP", T0 + timedelta(seconds=20)),
        hold("hold_propagated", "MES", T0 + timedelta(seconds=40)),
    )
    # 14 min 59 s after the first propagation (+20 s): inside the 15 min tolerance.
    assert reconcile(T0 + timedelta(minutes=15, seconds=19)).opened == []
    opened = reconcile(T0 + timedelta(minutes=15, seconds=20)).opened
    assert len(opened) == 1
    exception = ReconciliationException.objects.get()
    assert exception.rule == "fan_out:quality_hold:hold_propagated"
    assert (exception.reached, exception.missing) == (["ERP", "MES"], ["WMS"])
    assert exception.since == T0 + timedelta(seconds=20)
    assert exception.business_keys == LOT
    assert exception.summary == (
        "Quality hold for lot L-26-737953 from QMS: hold_propagated reached ERP and MES, never WMS"
    )
    # A second pass changes nothing.
    again = reconcile(T0 + timedelta(minutes=20))
    assert (again.opened, again.closed) == ([], [])
    assert ReconciliationException.objects.count() == 1

    wms = hold("hold_propagated", "WMS", T0 + timedelta(minutes=25), event_id="wms-late")
    send(wms)
    closed = reconcile(T0 + timedelta(minutes=26)).closed
    assert [e.id for e in closed] == [exception.id]
    exception.refresh_from_db()
    assert exception.state == "closed"
    assert exception.closed_at == T0 + timedelta(minutes=26)
    assert exception.closed_by_event == "wms-late"


def test_the_tolerance_stops_in_planned_downtime(p100):
    # Planned downtime from +5 min to +65 min: the 15 min tolerance ends at 15 + 60 = +75 min
    # (+20 s: the first propagation).
    Downtime.objects.create(
        plant=p100, start=T0 + timedelta(minutes=5), end=T0 + timedelta(minutes=65), reason="PM"
    )
    send(
        hold("hold_applied", "ERP", T0),
        hold("hold_propagated", "ERP", T0 + timedelta(seconds=20)),
    )
    assert reconcile(T0 + timedelta(minutes=75, seconds=19)).opened == []
    assert len(reconcile(T0 + timedelta(minutes=75, seconds=20)).opened) == 1


def test_a_hold_that_reached_no_target_is_not_a_reconciliation_exception(p100):
    send(hold("hold_applied", "ERP", T0))
    assert reconcile(T0 + timedelta(hours=2)).opened == []


def test_the_flow_tolerance_is_the_flows_own(p100):
    Flow.objects.filter(code="quality_hold").update(reconcile_after=timedelta(minutes=2))
    send(hold("hold_propagated", "ERP", T0))
    assert len(reconcile(T0 + timedelta(minutes=2)).opened) == 1


def test_a_failed_wms_propagation_is_not_superseded_by_erp_getting_the_hold(p100):
    send(
        hold("hold_applied", "ERP", T0),
        failed(
            "hold_propagated",
            flow="quality_hold",
            correlation_id="NC-1",
            source="MW",
            target="WMS",
            at=T0 + timedelta(seconds=10),
            business_keys=LOT,
            payload={"Lock": "QI"},
        ),
        hold("hold_propagated", "ERP", T0 + timedelta(seconds=30)),
    )
    mark_superseded(now=T0 + timedelta(hours=1))
    letter = DeadLetter.objects.get()
    assert letter.superseded_at is None  # WMS still lacks the hold: replaying it is needed
    send(hold("hold_propagated", "WMS", T0 + timedelta(minutes=3)))
    mark_superseded(now=T0 + timedelta(hours=1))
    letter.refresh_from_db()
    assert letter.superseded_at is not None
