"""Dead letters captured: from failed events at ingest, from middleware reports, and marked
superseded when the transaction gets there after all."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.events import PAYLOAD, dead_letter, event
from tracing.ingest.pipeline import ingest_events
from tracing.models import DeadLetter

pytestmark = pytest.mark.django_db


def report(n="mw-1", **overrides):
    body = {
        "id": n,
        "correlation_id": "PO-77",
        "flow": "order_release",
        "source": "MW",
        "target": "MES",
        "plant": "P100",
        "step": "received",
        "error": {"class": "transient", "code": "HTTP_503", "message": "MES unavailable"},
        "payload": {"order": "77"},
        "headers": {"Content-Type": "application/json", "Authorization": "Bearer s3cret"},
        "attempts": 5,
        "first_failed_at": "2026-11-20T06:00:00+01:00",
        "last_failed_at": "2026-11-20T06:05:00+01:00",
    }
    body.update(overrides)
    return body


def test_failed_event_with_payload_becomes_a_dead_letter_with_its_order(p100):
    letter = dead_letter("PO-9", order="9")
    assert (letter.step, letter.business_key, letter.state) == ("received", "order:9", "new")
    assert letter.payload == PAYLOAD


def test_middleware_reports_a_dead_letter_once_per_id(client, reporter_key, p100):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {reporter_key}"}
    first = client.post("/api/v1/dead-letters", report(), content_type="application/json", **auth)
    again = client.post("/api/v1/dead-letters", report(), content_type="application/json", **auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert DeadLetter.objects.filter(external_id="mw-1").count() == 1
    data = first.json()
    assert data["id"] == "mw-1" and data["attempts"] == 5 and data["target"] == "MES"
    assert data["error"] == {"class": "transient", "code": "HTTP_503", "message": "MES unavailable"}
    assert data["headers"]["Authorization"] == "********"


@pytest.mark.parametrize(
    "field, value",
    [
        ("flow", "no_such_flow"),
        ("error", {"class": "nonsense", "code": "", "message": ""}),
        ("first_failed_at", "yesterday"),
        ("attempts", 0),
        ("id", ""),
    ],
)
def test_a_bad_report_names_the_field(client, reporter_key, p100, field, value):
    response = client.post(
        "/api/v1/dead-letters",
        report(**{field: value}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {reporter_key}",
    )
    assert response.status_code == 400
    assert any(key.startswith(field) for key in response.json())
    assert not DeadLetter.objects.exists()


def test_reporting_needs_an_api_key(client, p100):
    response = client.post("/api/v1/dead-letters", report(), content_type="application/json")
    assert response.status_code == 401 and "API key" in response.json()["error"]
    assert not DeadLetter.objects.exists()


def test_a_later_ok_event_supersedes_the_dead_letter_as_it_arrives(p100):
    from tracing.dead_letters.superseded import mark_superseded

    letter = dead_letter("PO-5", order="5")
    later = datetime.now(UTC) - timedelta(seconds=5)
    ingest_events([event("received", correlation_id="PO-5", source="MW", at=later)])
    assert mark_superseded() == []  # the ingest already marked it
    letter.refresh_from_db()
    assert letter.superseded_at is not None and letter.state == "new"


def test_a_letter_two_sweeps_mark_superseded_has_one_line_in_its_audit_trail(p100):
    from tracing.dead_letters.superseded import SUPERSEDED_TEXT, _mark

    letter = dead_letter("PO-6", order="6")
    first = datetime.now(UTC)
    _mark([letter.id], first)
    _mark([letter.id], first + timedelta(seconds=1))  # a second sweep that read it open too
    letter.refresh_from_db()
    assert letter.superseded_at == first
    lines = list(letter.changes.filter(kind="superseded").values_list("at", "text"))
    assert lines == [(first, SUPERSEDED_TEXT)]
