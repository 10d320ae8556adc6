"""INGEST_CORRELATION=deferred: the correlators record how fast they fold, and the event doors
hold back, then refuse, a batch that the queue ahead of it would keep waiting past the promised
lag."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests.events import event
from tracing.ingest import backlog, correlator
from tracing.ingest.backlog import PACE_FRESH, pace, record_pace
from tracing.ingest.correlator import correlate_pending
from tracing.ingest.pipeline import ingest_events
from tracing.models import CorrelatorPace, PendingCorrelation, TraceEvent, Transaction

pytestmark = pytest.mark.django_db


@pytest.fixture
def deferred_door(settings):
    settings.INGEST_CORRELATION = "deferred"
    settings.CORRELATOR_MAX_LAG_SECONDS = 5.0  # the oldest-wait check stays out of the way
    settings.CORRELATOR_MAX_QUEUE = 1000
    settings.CORRELATOR_DOOR_WAIT_SECONDS = 0  # refuse at once, unless a test holds the door


def queue(count, prefix="PO-Q"):
    """`count` events queued just now, none folded."""
    ingest_events(
        [event("released", correlation_id=f"{prefix}{i}") for i in range(count)], defer=True
    )


def send(client, key, *correlation_ids):
    return client.post(
        "/api/v1/events",
        data={"events": [event("released", correlation_id=c) for c in correlation_ids]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def assert_refused(answer, reason, correlation_id):
    """A 503 that says why and to come back in a second, with nothing of the batch stored."""
    assert answer.status_code == 503
    assert answer["Retry-After"] == "1"
    assert answer.json()["error"] == f"{reason}; nothing was stored. Retry after 1 s."
    assert not TraceEvent.objects.filter(correlation_id=correlation_id).exists()


def test_the_door_answers_503_while_the_correlator_is_over_the_lag_behind(
    client, p100, reporter_key, deferred_door
):
    waiting = datetime.now(UTC) - timedelta(seconds=8)
    ingest_events([event("released", at=waiting - timedelta(minutes=1))], defer=True, now=waiting)

    refused = send(client, reporter_key, "PO-LATER")
    assert refused.json()["error"].startswith("Correlation is 8.")
    reason = refused.json()["error"].split(";")[0]
    assert reason.endswith(" s behind (at most 5 s allowed)")
    assert_refused(refused, reason, "PO-LATER")

    correlate_pending()
    accepted = send(client, reporter_key, "PO-LATER")
    assert accepted.status_code == 202 and accepted.json()["accepted"] == 1
    assert PendingCorrelation.objects.count() == 1


def test_the_door_answers_503_while_more_is_queued_than_allowed(
    client, p100, reporter_key, deferred_door, settings
):
    settings.CORRELATOR_MAX_QUEUE = 3
    queue(4)

    refused = send(client, reporter_key, "PO-MORE")
    assert_refused(
        refused, "Correlation is behind: about 4 events queued (at most 3 allowed)", "PO-MORE"
    )

    assert correlate_pending(limit=2).folded == 2  # the two oldest
    accepted = send(client, reporter_key, "PO-MORE")
    assert accepted.status_code == 202 and accepted.json()["accepted"] == 1
    assert PendingCorrelation.objects.count() == 3


def test_the_door_refuses_a_batch_the_queue_ahead_would_keep_past_the_lag(
    client, p100, reporter_key, deferred_door
):
    queue(5)
    record_pace(folded=1, seconds=1.0, worker="slow")  # 1 event/s: 6 events take 6 s

    refused = send(client, reporter_key, "PO-LATE")
    assert_refused(
        refused,
        "Correlation is behind: about 5 events queued and 1 arriving take 6.0 s to fold at 1 "
        "events/s (at most 5 s allowed)",
        "PO-LATE",
    )
    assert PendingCorrelation.objects.count() == 5

    record_pace(folded=1999, seconds=1.0, worker="slow")  # rising by halves: 1,000 events/s
    accepted = send(client, reporter_key, "PO-LATE")
    assert accepted.status_code == 202 and accepted.json()["accepted"] == 1
    assert PendingCorrelation.objects.count() == 6


def test_the_door_counts_the_whole_batch_at_the_door(client, p100, reporter_key, deferred_door):
    queue(1)
    record_pace(folded=1, seconds=1.0, worker="slow")
    assert send(client, reporter_key, "PO-A", "PO-B", "PO-C").status_code == 202  # 4 s
    refused = send(client, reporter_key, *(f"PO-N{i}" for i in range(2)))  # 4 + 2: 6 s
    assert refused.status_code == 503
    assert "about 4 events queued and 2 arriving take 6.0 s" in refused.json()["error"]


def test_an_empty_queue_takes_a_batch_however_slow_the_pace(
    client, p100, reporter_key, deferred_door
):
    record_pace(folded=1, seconds=100.0, worker="slow")
    answer = send(client, reporter_key, "PO-1", "PO-2", "PO-3")
    assert answer.status_code == 202 and answer.json()["accepted"] == 3


def test_a_stale_pace_is_not_the_pace_now(client, p100, reporter_key, deferred_door):
    queue(5)
    long_ago = datetime.now(UTC) - PACE_FRESH - timedelta(seconds=1)
    record_pace(folded=10, seconds=1.0, now=long_ago, worker="stopped")
    assert pace() is None
    answer = send(client, reporter_key, "PO-LATE")
    assert answer.status_code == 202 and answer.json()["accepted"] == 1


def test_paces_of_correlators_side_by_side_add_up_and_each_falls_fast_and_rises_slowly(p100):
    now = datetime.now(UTC)
    record_pace(folded=2000, seconds=1.0, now=now, worker="a")
    record_pace(folded=1000, seconds=0.5, now=now, worker="b")
    assert pace(now) == 4000
    record_pace(folded=4000, seconds=1.0, now=now, worker="a")  # faster: half old, half new
    assert CorrelatorPace.objects.get(worker="a").events_per_second == 3000
    assert pace(now) == 5000
    record_pace(folded=1000, seconds=1.0, now=now, worker="a")  # slower: taken at once
    assert CorrelatorPace.objects.get(worker="a").events_per_second == 1000
    later = now + PACE_FRESH + timedelta(seconds=1)
    record_pace(folded=700, seconds=0.5, now=later, worker="a")  # faster, but replaces stale
    assert CorrelatorPace.objects.get(worker="a").events_per_second == 1400
    assert pace(later) == 1400  # b's pace is stale by then


def test_the_loop_records_its_pace_and_goes_straight_on_while_it_finds_events(p100, monkeypatch):
    queue(7)
    monkeypatch.setattr(correlator, "PACE_MIN_EVENTS", 3)
    sleeps, recorded = [], []
    monkeypatch.setattr(correlator.time, "sleep", sleeps.append)
    real_record = correlator.record_pace
    monkeypatch.setattr(
        correlator,
        "record_pace",
        lambda folded, seconds: (recorded.append(folded), real_record(folded, seconds)),
    )
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 4  # 3 + 3 + 1 events, then one pass over the empty queue

    correlator.run(stop=stop, batch=3, idle=0.25)
    assert recorded == [3, 3]  # the pass of one event is too short to tell the pace
    assert sleeps == [0.25]  # only after the pass that found the queue empty
    assert set(Transaction.objects.values_list("event_count", flat=True)) == {1}
    (row,) = CorrelatorPace.objects.all()
    assert row.events_per_second > 0


class FakeClock:
    """time.monotonic and time.sleep for the door: sleeping moves the clock, and may run
    `on_sleep` (what the correlator does meanwhile)."""

    def __init__(self, on_sleep=None):
        self.now, self.sleeps, self.on_sleep = 1000.0, [], on_sleep

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep()


def test_the_door_holds_a_batch_until_the_correlator_catches_up(
    client, p100, reporter_key, deferred_door, settings, monkeypatch
):
    settings.CORRELATOR_MAX_QUEUE = 3
    settings.CORRELATOR_DOOR_WAIT_SECONDS = 1.0
    queue(4)
    caught_up = []

    def correlator_pass():
        if not caught_up:
            correlate_pending(limit=4)
            caught_up.append(timezone.now())

    clock = FakeClock(on_sleep=correlator_pass)
    monkeypatch.setattr(backlog, "time", clock)

    answer = send(client, reporter_key, "PO-HELD")
    assert answer.status_code == 202 and answer.json()["accepted"] == 1
    assert clock.sleeps == [backlog.ADMIT_POLL_SECONDS]  # one look, then in
    held = TraceEvent.objects.get(correlation_id="PO-HELD")
    assert held.received_at >= caught_up[0]  # received when stored: the wait is not lag
    assert PendingCorrelation.objects.get().received_at == held.received_at


def test_the_door_answers_503_once_it_has_waited_as_long_as_allowed(
    client, p100, reporter_key, deferred_door, settings, monkeypatch
):
    settings.CORRELATOR_MAX_QUEUE = 3
    settings.CORRELATOR_DOOR_WAIT_SECONDS = 0.1
    queue(4)
    clock = FakeClock()  # no correlator runs
    monkeypatch.setattr(backlog, "time", clock)

    refused = send(client, reporter_key, "PO-GIVEN-UP")
    assert_refused(
        refused, "Correlation is behind: about 4 events queued (at most 3 allowed)", "PO-GIVEN-UP"
    )
    assert clock.sleeps == [backlog.ADMIT_POLL_SECONDS] * 4  # 0.1 s in looks 25 ms apart


def test_a_door_told_not_to_wait_refuses_at_once(
    client, p100, reporter_key, deferred_door, settings, monkeypatch
):
    settings.CORRELATOR_MAX_QUEUE = 3
    queue(4)
    clock = FakeClock()
    monkeypatch.setattr(backlog, "time", clock)
    assert send(client, reporter_key, "PO-NOW").status_code == 503
    assert clock.sleeps == []
