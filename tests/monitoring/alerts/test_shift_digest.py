"""Shift handover: at each shift end the plant's email channels get one digest of what is open,
what changed during the shift and the SLO status, each with a link; never twice."""

from datetime import UTC, datetime, timedelta

import pytest

from integration_hub.calendars import shifts_ended
from integration_hub.models import Shift
from monitoring.alerts.digest import send_shift_digests
from monitoring.models import AlertChannel, ShiftDigest
from monitoring.slo import outcomes
from monitoring.slo.figures import evaluate_slos
from tests.events import dead_letter, event
from tracing.ingest.pipeline import ingest_events

pytestmark = pytest.mark.django_db


def local(plant, text):
    return datetime.fromisoformat(text).replace(tzinfo=plant.tzinfo)


@pytest.fixture
def early(p100):
    return Shift.objects.create(
        plant=p100, name="Early", days=[0, 1, 2, 3, 4], start="06:00", end="14:00"
    )


def test_shift_ends_are_read_in_the_plants_zone_across_midnight_and_dst(p100):
    night = Shift.objects.create(plant=p100, name="Night", days=[5], start="22:00", end="06:00")
    # Saturday 24 Oct 2026 22:00 → Sunday 06:00 CET: the clocks go back at 03:00 (9 hours)
    [(shift, begins, ends)] = shifts_ended(
        p100, local(p100, "2026-10-25T05:00"), local(p100, "2026-10-25T07:00")
    )
    assert shift == night
    assert ends.astimezone(UTC) - begins.astimezone(UTC) == timedelta(hours=9)
    assert ends == local(p100, "2026-10-25T06:00")
    assert (
        shifts_ended(p100, local(p100, "2026-10-25T06:00"), local(p100, "2026-10-26T07:00")) == []
    )


def test_the_digest_goes_once_to_the_plants_channels_with_links(early, p100, p200, smtp):
    mine = AlertChannel.objects.create(
        name="P100 support", kind="email", recipients=["p100@plant.example"]
    )
    mine.plants.set([p100])
    other = AlertChannel.objects.create(
        name="P200 support", kind="email", recipients=["p200@plant.example"]
    )
    other.plants.set([p200])
    ends = local(p100, "2026-11-23T14:00")  # a Monday
    during = ends - timedelta(hours=2)
    letter = dead_letter("PO-1")
    type(letter).objects.filter(pk=letter.pk).update(created_at=during)
    ingest_events(
        [event("released", correlation_id="PO-STUCK", at=ends - timedelta(hours=3))], now=ends
    )
    outcomes.refresh(ends)
    evaluate_slos(ends)

    sent = send_shift_digests(ends + timedelta(seconds=30))
    assert sent == [("P100", "Early", ["p100@plant.example"])]
    [mail] = smtp.messages
    assert mail["to"] == ["p100@plant.example"]
    message = mail["message"]
    assert message["Subject"] == "[hub] P100 shift handover: Early (Mon 06:00–14:00)"
    body = message.get_content()
    assert "- 1 open dead letter, by cause:" in body
    assert f"fingerprint={letter.fingerprint}" in body
    assert "- 1 stuck transaction" in body
    assert "http://127.0.0.1:8000/transactions/?plant=P100&flow=order_release&state=stuck" in body
    assert "- 1 new dead letter, 0 closed" in body
    assert "Order release latency: " in body and "/plants/P100/slos/order-release-latency/" in body

    assert send_shift_digests(ends + timedelta(minutes=1)) == []  # once per shift end
    assert ShiftDigest.objects.count() == 1 and len(smtp.messages) == 1
