"""Retention of tracing data: each kind goes when its plant's retention has passed, in
batches, and nothing goes that something still needs (an open transaction's events, a dead
letter's event, an open dead letter, a transaction with a dead letter)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integration_hub.models import RetentionOverride
from integration_hub.retention import run
from tests.events import dead_letter, event
from tracing import retention
from tracing.ingest.pipeline import ingest_events
from tracing.models import BusinessKey, DeadLetter, DeadLetterChange, TraceEvent, Transaction

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def purge(kind, now=None, **options):
    (found,) = [p for p in retention.PURGES if p.kind == kind]
    return run(found, now=now or timezone.now(), **options)


def journey(corr, *, plant="P100", complete=True, payload=None):
    """An order release (acknowledged when `complete`), each event carrying a payload."""
    events = [event("released", correlation_id=corr, plant=plant, payload=payload or {"p": corr})]
    if complete:
        events.append(
            event("acknowledged", correlation_id=corr, plant=plant, source="MES", payload={"a": 1})
        )
    assert ingest_events(events).accepted == len(events)
    return Transaction.objects.get(correlation_id=corr, plant__code=plant)


def age(txn, days):
    """Make a transaction and its events look `days` old."""
    then = timezone.now() - days * DAY
    TraceEvent.objects.filter(transaction=txn).update(received_at=then)
    Transaction.objects.filter(pk=txn.pk).update(
        last_seen=then, completed_at=then if txn.completed_at else None
    )


def events_of(corr):
    return TraceEvent.objects.filter(correlation_id=corr).count()


def test_raw_events_go_after_90_days_in_batches(p100):
    old, recent = journey("PO-OLD"), journey("PO-RECENT")
    age(old, 91)
    age(recent, 89)
    progress = []
    assert purge("events", batch_size=1, progress=lambda *a: progress.append(a[1:])) == 2
    assert (events_of("PO-OLD"), events_of("PO-RECENT")) == (0, 2)
    assert progress == [(1, 2), (2, 2)]  # one batch at a time, with progress
    assert Transaction.objects.filter(pk=old.pk).exists()  # the transaction stays (400 days)


def test_events_of_an_open_transaction_stay(p100):
    open_txn = journey("PO-OPEN", complete=False)
    age(open_txn, 300)
    assert purge("events") == 0
    assert events_of("PO-OPEN") == 1


def test_a_dead_letters_event_and_its_transactions_events_stay_while_it_is_open(p100):
    letter = dead_letter("PO-DL")
    ingest_events([event("released", correlation_id="PO-DL")])
    txn = Transaction.objects.get(correlation_id="PO-DL")
    age(txn, 200)
    assert purge("events") == 0
    assert events_of("PO-DL") == 2
    DeadLetter.objects.filter(pk=letter.pk).update(state="resolved", closed_at=timezone.now())
    assert purge("events") == 1  # the release goes; the dead letter's own event stays
    letter.refresh_from_db()
    assert letter.event_id is not None and TraceEvent.objects.filter(pk=letter.event_id).exists()


def test_payloads_of_completed_transactions_go_after_30_days_the_events_stay(p100):
    old, recent, open_txn = journey("PO-OLD"), journey("PO-NEW"), journey("PO-OPEN", complete=False)
    age(old, 31)
    age(recent, 29)
    age(open_txn, 31)
    assert purge("payloads") == 2
    payloads = TraceEvent.objects.filter(correlation_id="PO-OLD").values_list("payload", flat=True)
    assert list(payloads) == [None, None]
    assert TraceEvent.objects.filter(correlation_id="PO-NEW", payload__isnull=False).count() == 2
    assert TraceEvent.objects.filter(correlation_id="PO-OPEN", payload__isnull=False).count() == 1
    assert purge("payloads") == 0


def test_closed_dead_letters_go_180_days_after_closing_with_their_trail(p100):
    old, kept, still_open = dead_letter("PO-A"), dead_letter("PO-B"), dead_letter("PO-C")
    DeadLetterChange.objects.create(dead_letter=old, kind="note", text="looked at it")
    now = timezone.now()
    DeadLetter.objects.filter(pk=old.pk).update(state="discarded", closed_at=now - 181 * DAY)
    DeadLetter.objects.filter(pk=kept.pk).update(state="replayed", closed_at=now - 179 * DAY)
    DeadLetter.objects.filter(pk=still_open.pk).update(first_failed_at=now - 999 * DAY)
    assert purge("dead_letters") == 1
    assert set(DeadLetter.objects.values_list("external_id", flat=True)) == {
        kept.external_id,
        still_open.external_id,
    }
    assert not DeadLetterChange.objects.filter(dead_letter_id=old.pk).exists()


def test_transactions_go_after_400_days_unless_open_or_holding_a_dead_letter(p100):
    done, open_txn = journey("PO-DONE"), journey("PO-OPEN", complete=False)
    dead_letter("PO-DL")
    held = Transaction.objects.get(correlation_id="PO-DL")
    for txn in (done, open_txn, held):
        age(txn, 401)
    assert purge("transactions") == 1
    assert set(Transaction.objects.values_list("correlation_id", flat=True)) == {"PO-OPEN", "PO-DL"}
    assert events_of("PO-DONE") == 0
    assert not BusinessKey.objects.filter(transaction_id=done.pk).exists()


def test_a_plants_own_retention_overrides_the_setting(p100, p200):
    p100_txn, p200_txn = journey("PO-1", plant="P100"), journey("PO-1", plant="P200")
    age(p100_txn, 20)
    age(p200_txn, 20)
    RetentionOverride.objects.create(plant=p200, kind="events", days=14)
    assert purge("events") == 2
    assert TraceEvent.objects.filter(plant=p100).count() == 2
    assert TraceEvent.objects.filter(plant=p200).count() == 0
    RetentionOverride.objects.create(plant=p100, kind="events", days=0)  # forever
    age(p100_txn, 5000)
    assert purge("events") == 0


def test_a_dry_run_counts_and_removes_nothing(p100):
    old = journey("PO-OLD")
    age(old, 500)
    assert purge("events", dry_run=True) == 2
    assert purge("transactions", dry_run=True) == 1
    assert purge("payloads", dry_run=True) == 2
    assert events_of("PO-OLD") == 2
    assert TraceEvent.objects.filter(payload__isnull=False).count() == 2
