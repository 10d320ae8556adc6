"""INGEST_CORRELATION=deferred: the request stores and queues, the correlator folds."""

import io
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.events import event, failed, sample_events
from tests.tracing.ingest.journey import JOURNEY, NOW, row_of
from tracing.ingest import correlator
from tracing.ingest.backlog import backlog
from tracing.ingest.correlator import correlate_pending
from tracing.ingest.pipeline import ingest_events
from tracing.models import BusinessKey, DeadLetter, PendingCorrelation, TraceEvent, Transaction

pytestmark = pytest.mark.django_db


def deferred(events, **kwargs):
    return ingest_events(events, defer=True, **kwargs)


def drain(limit=None):
    folded = 0
    while (done := correlate_pending(limit=limit, now=NOW)).claimed:
        folded += done.folded
    return folded


def test_the_request_stores_and_queues_and_the_correlator_folds(p100):
    sent = [
        event("released", at=NOW - timedelta(minutes=5), business_keys={"order": "7"}),
        failed(
            "received",
            at=NOW - timedelta(minutes=4),
            source="MW",
            payload={"po": "7"},
            business_keys={"order": "7"},
        ),
    ]
    result = deferred(sent, now=NOW)
    assert (result.accepted, result.duplicates) == (2, 0)
    # Stored and queued; the transaction exists but nothing is folded into it yet.
    assert TraceEvent.objects.count() == 2
    assert PendingCorrelation.objects.count() == 2
    stub = Transaction.objects.get()
    assert (stub.event_count, stub.milestones, stub.state) == (0, {}, "in_flight")
    assert set(TraceEvent.objects.values_list("transaction_id", flat=True)) == {stub.id}
    assert not BusinessKey.objects.exists() and not DeadLetter.objects.exists()

    done = correlate_pending(now=NOW)

    assert (done.folded, done.claimed) == (2, 2)
    assert not PendingCorrelation.objects.exists()
    txn = Transaction.objects.get()
    assert (txn.event_count, txn.state) == (2, "failed")
    assert txn.milestones == {"released": (NOW - timedelta(minutes=5)).isoformat()}
    assert txn.last_error["step"] == "received"
    assert list(BusinessKey.objects.values_list("name", "value")) == [("order", "7")]
    letter = DeadLetter.objects.get()
    assert (letter.transaction_id, letter.payload, letter.step) == (txn.id, {"po": "7"}, "received")
    assert letter.event_id == TraceEvent.objects.get(status="failed").id


def test_a_resent_batch_is_not_queued_twice(p100):
    sent = [event("released", at=NOW - timedelta(minutes=1))]
    deferred(sent, now=NOW)
    again = deferred(sent, now=NOW)
    assert (again.accepted, again.duplicates) == (0, 1)
    assert PendingCorrelation.objects.count() == 1
    assert drain() == 1
    assert Transaction.objects.get().event_count == 1


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.permutations(range(len(JOURNEY))),
    repeats=st.lists(st.integers(0, len(JOURNEY) - 1), max_size=6),
    cuts=st.lists(st.integers(1, len(JOURNEY) + 6), max_size=3),
    passes=st.lists(st.integers(1, 4), min_size=1, max_size=4),
)
def test_any_arrival_order_and_pass_size_folds_to_what_the_request_path_gives(
    p100, order, repeats, cuts, passes
):
    """The property test of test_correlation over the deferred path: batches arrive in any
    order and with repeats, the correlator folds them in passes of any size between them."""
    Transaction.objects.all().delete()
    DeadLetter.objects.all().delete()
    ingest_events(JOURNEY, now=NOW, defer=False)
    expected = row_of(Transaction.objects.get())
    letters = sorted(DeadLetter.objects.values_list("external_id", "state"))
    Transaction.objects.all().delete()
    DeadLetter.objects.all().delete()
    TraceEvent.objects.all().delete()
    arrivals = [JOURNEY[i] for i in order] + [JOURNEY[i] for i in repeats]
    bounds = sorted({0, len(arrivals), *[c for c in cuts if c < len(arrivals)]})
    for n, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
        deferred(arrivals[start:end], now=NOW)
        correlate_pending(limit=passes[n % len(passes)], now=NOW)
    drain(limit=passes[0])
    assert row_of(Transaction.objects.get()) == expected
    assert sorted(DeadLetter.objects.values_list("external_id", "state")) == letters
    assert not PendingCorrelation.objects.exists()


def test_a_pass_that_fails_leaves_its_events_queued_and_nothing_folded(p100, monkeypatch):
    deferred([event("released", at=NOW - timedelta(minutes=1))], now=NOW)

    def crash(*args, **kwargs):
        raise RuntimeError("correlator killed mid-pass")

    monkeypatch.setattr(correlator, "correlate", crash)
    with pytest.raises(RuntimeError):
        correlate_pending(now=NOW)
    assert PendingCorrelation.objects.count() == 1
    assert Transaction.objects.get().event_count == 0
    monkeypatch.undo()
    assert correlate_pending(now=NOW).folded == 1
    assert Transaction.objects.get().event_count == 1


def test_an_event_whose_transaction_retention_removed_is_claimed_not_folded(p100):
    deferred([event("released", at=NOW - timedelta(minutes=1))], now=NOW)
    Transaction.objects.all().delete()  # cascades to its events, as retention does
    done = correlate_pending(now=NOW)
    assert (done.folded, done.claimed) == (0, 1)
    assert not PendingCorrelation.objects.exists()


def test_deferred_http_ingest_answers_202_and_run_correlator_once_folds(
    client, p100, p200, reporter_key, settings
):
    settings.INGEST_CORRELATION = "deferred"
    events = sample_events(datetime.now(UTC))
    response = client.post(
        "/api/v1/events",
        data={"events": events},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {reporter_key}",
    )
    assert response.status_code == 202
    assert response.json() == {"accepted": 17, "duplicates": 0, "rejected": []}
    assert Transaction.objects.filter(event_count=0).count() == 8  # nothing folded yet

    out = io.StringIO()
    call_command("run_correlator", "--once", "--batch", "5", stdout=out)

    assert "Done: 17 events folded; 0 queued now." in out.getvalue()
    release = Transaction.objects.get(correlation_id="PO-1000123")
    assert release.state == "completed"
    assert release.business_keys == {"order": "1000123", "material": "FG-4711"}
    assert sum(Transaction.objects.values_list("event_count", flat=True)) == 17


def test_the_loop_folds_batch_after_batch_and_reports(p100):
    deferred(
        [
            event("released", correlation_id=f"PO-{n}", at=NOW - timedelta(minutes=1))
            for n in range(7)
        ],
        now=NOW,
    )
    reports, passes = [], []

    def stop():
        passes.append(1)
        return not PendingCorrelation.objects.exists()

    correlator.run(
        stop=stop, batch=3, idle=0, report=lambda n, s: reports.append(n), report_every=0
    )
    assert len(passes) == 4  # 3 + 3 + 1, then the queue is empty
    assert sum(reports) == 7
    assert set(Transaction.objects.values_list("event_count", flat=True)) == {1}
    assert backlog() == (0, 0.0)


def test_backlog_names_the_queue_and_how_long_the_oldest_waited(p100):
    deferred([event("released", at=NOW - timedelta(minutes=1))], now=NOW)
    assert backlog(now=NOW + timedelta(seconds=3)) == (1, 3.0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_passes_side_by_side_fold_each_event_once(p100):
    base = datetime.now(UTC) - timedelta(minutes=10)
    steps = ["released", "received", "acknowledged"]
    sent = [
        event(steps[i % 3], correlation_id=f"PO-{i // 3}", at=base + timedelta(seconds=i))
        for i in range(600)
    ]
    for start in range(0, 600, 100):
        deferred(sent[start : start + 100])
    errors = []

    def worker():
        try:
            while correlate_pending(limit=50).claimed:
                pass
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert not PendingCorrelation.objects.exists()
    assert set(Transaction.objects.values_list("event_count", flat=True)) == {3}
    assert set(Transaction.objects.values_list("state", flat=True)) == {"completed"}
