"""Hostile input at both reporters' doors (/api/v1/events and /api/v1/dead-letters): one
contract, a 4xx naming the field and the reason, nothing half-written, never a 500."""

import json

import pytest

from tests.events import event
from tracing.models import DeadLetter, TraceEvent

pytestmark = pytest.mark.django_db
BIG = 123456789012345678901234567890


def report(**fields):
    body = {
        "id": "mw-1",
        "correlation_id": "PO-77",
        "flow": "order_release",
        "source": "MW",
        "target": "MES",
        "plant": "P100",
        "error": {"class": "transient", "code": "HTTP_503", "message": "MES unavailable"},
        "payload": {"order": "77"},
    }
    body.update(fields)
    return body


@pytest.fixture
def send(client, reporter_key, p100):
    def post(url, text):
        return client.post(
            url, text, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {reporter_key}"
        )

    return post


def as_text(body):
    return json.dumps(body, ensure_ascii=True)


# Each case: (where in the body, raw JSON text of the value, field the answer names).
BAD_VALUES = [
    ("correlation_id", '"PO-\\u0000-1"', "correlation_id"),
    ("correlation_id", '"PO-\\ud800"', None),  # a lone surrogate: malformed JSON, 400
    ("payload", '{"note": "a\\u0000b"}', "payload"),
    ("payload", f'{{"qty": {BIG}}}', "payload"),
    ("payload", f'{{"qty": -{BIG}}}', "payload"),
    ("payload", "[" * 1100 + "]" * 1100, None),  # nested too deeply
    ("payload", '{"big": "' + "x" * (300 * 1024) + '"}', "payload"),
    ("business_keys", '{"order": "4\\u00007"}', "business_keys"),
]


def with_raw(body, name, raw):
    marker = "__RAW__"
    body[name] = marker
    return as_text(body).replace(f'"{marker}"', raw)


@pytest.mark.parametrize("name, raw, field", BAD_VALUES)
def test_a_bad_event_value_is_refused_by_field(send, name, raw, field):
    response = send("/api/v1/events", with_raw(event("released"), name, raw))
    assert response.status_code in (400, 413)
    body = response.json()
    if field:
        assert field in body["rejected"][0]["errors"], body
    else:
        assert "error" in body
    assert not TraceEvent.objects.exists()


@pytest.mark.parametrize("name, raw, field", [*BAD_VALUES, ("attempts", str(BIG), "attempts")])
def test_a_bad_dead_letter_value_is_refused_by_field(send, name, raw, field):
    response = send("/api/v1/dead-letters", with_raw(report(), name, raw))
    assert response.status_code in (400, 413)
    body = response.json()
    assert (field in body) if field else ("error" in body), body
    assert not DeadLetter.objects.exists()


@pytest.mark.parametrize(
    "when, reason",
    [
        ("0001-01-01T00:00:00+01:00", "outside the calendar"),
        ("9999-12-31T23:59:59-01:00", "outside the calendar"),
        ("2019-01-01T00:00:00Z", "INGEST_MAX_AGE_DAYS"),
    ],
)
def test_occurred_at_out_of_bounds_is_named(send, when, reason):
    response = send("/api/v1/events", as_text(event("released", occurred_at=when)))
    assert response.status_code == 400
    assert reason in response.json()["rejected"][0]["errors"]["occurred_at"][0]
    failed = send("/api/v1/dead-letters", as_text(report(first_failed_at=when)))
    assert failed.status_code == 400
    assert "first_failed_at" in failed.json()


def test_the_max_age_is_a_setting(send, settings):
    settings.INGEST_MAX_AGE_DAYS = 10_000
    response = send("/api/v1/events", as_text(event("released", occurred_at="2019-01-01T00:00Z")))
    assert response.status_code == 202


def test_64_bit_integers_are_kept_exactly_and_replay_as_sent(send):
    payload = {
        "max": 18446744073709551615,
        "min": -9223372036854775808,
        "id": "12345678901234567890",
    }
    response = send("/api/v1/events", as_text(event("released", payload=payload)))
    assert response.status_code == 202
    assert TraceEvent.objects.get().payload == payload


def test_a_repeated_key_keeps_its_last_value(send):
    text = as_text(event("released")).replace('"step":', '"step": "nope", "step":')
    response = send("/api/v1/events", text)
    assert response.status_code == 202
    assert TraceEvent.objects.get().step == "released"
