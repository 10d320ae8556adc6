"""The compiled contract (msgspec: the fast path of POST /api/v1/events) judges every event as
the hand-written checks do: the same CleanEvent for what it takes, and what it does not take
goes to the hand-written checks, so each rejection keeps its messages."""

import contextlib
import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration_hub import exact_json
from integration_hub.models import ApiKey, System
from tests.events import event, sample_events
from tracing.ingest.compiled import TypedEvent, check_typed, split_batch, validate_events
from tracing.ingest.contract import Catalog, validate_event
from tracing.ingest.http import BadRequest, events_of

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
MISSING = object()


def at(minutes):
    return (NOW + timedelta(minutes=minutes)).isoformat()


def nested(depth):
    value = "leaf"
    for _ in range(depth):
        value = {"n": value}
    return value


ERROR = {"class": "master_data", "code": "ROUTING_NOT_FOUND", "message": "Routing R-1 missing"}
# Per field: values the contract takes and values it refuses, at and past each bound.
VALUES = {
    "event_id": [MISSING, None, "", "x" * 128, "x" * 129, "😀" * 128, "😀" * 129, 17, "a\x00b",
                 ["a"], "Prüfung-ü", "\u2028"],
    "correlation_id": [MISSING, None, "", "PO-ü", "y" * 128, "y" * 129, 4711, "PO\x001"],
    "flow": [MISSING, None, "order_relase", 7, "quality_hold", "", ["order_release"]],
    "step": [MISSING, None, "shipped", 3, "acknowledged", "received", ""],
    "source": [MISSING, None, "SAP", 7, "MES", "", "erp"],
    "target": [MISSING, None, "SAP", 7, "WMS", ""],
    "plant": [MISSING, None, "P999", 5, "P200", ""],
    "status": [MISSING, None, "done", "ok", "retrying", "failed", "rejected", 1, "OK"],
    "occurred_at": [MISSING, None, "yesterday", "2026-11-20T06:00:00", 1763618400, at(-1),
                    at(4), at(6), "2019-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
                    "9999-12-31T23:59:59-01:00", "2026-11-20T05:00Z", "2026-11-20 05:00:00+00:00",
                    "20261120T050000Z", "2026-11-20T06:30:00+01:00", ""],
    "business_keys": [MISSING, None, {}, {"order": 4711}, ["order"], "x",
                      {f"k{i}": "v" for i in range(16)}, {f"k{i}": "v" for i in range(17)},
                      {"": "v"}, {"k" * 64: "v"}, {"k" * 65: "v"}, {"k": "v" * 256},
                      {"k": "v" * 257}, {"k": ""}, {"k": "a\x00"}, {"a\x00": "v"},
                      {"lot": "ロット-42", "order": "1"}, {"k": None}],
    "error": [MISSING, None, ERROR, {"class": "oops", "message": "m"}, {"class": "transient"},
              {"class": "transient", "code": None}, {"class": "transient", "code": "c" * 128},
              {"class": "transient", "code": "c" * 129},
              {"class": "unknown", "message": "m" * 4000},
              {"class": "unknown", "message": "m" * 4001}, {"class": "transient", "extra": 1},
              "boom", {"class": "transient", "code": "a\x00"}, {"code": "x"}, {}, [ERROR],
              {"class": None}, {"class": "schema", "message": 5}],
    "payload": [MISSING, None, {"a": 1}, {"blob": "x" * (256 * 1024)},
                {"blob": "x" * (256 * 1024 - 20)}, {"text": "nul \x00 here"}, {"n": 2**64},
                {"n": 2**64 - 1}, {"n": -(2**63)}, {"n": -(2**63) - 1}, {"n": 10**30},
                {"f": 0.1}, {"f": 1e308}, {"f": -0.0}, {"f": 5e-324}, [1, "a", None, True],
                "text", 0, False, nested(50), {"u": "😀 ü \u2028"}, {"a\x00": 1}, []],
    "attributes": [MISSING, None, {}, {f"a{i}": i for i in range(64)},
                   {f"a{i}": i for i in range(65)}, "x", [1], {"a": {"b": [1, 2.5]}},
                   {"n": 2**70}, {"s": "x\x00"}, 0],
}  # fmt: skip


def variants():
    """A valid event, then one event per (field, value) above, then status × error."""
    base = event("released", at=at(-1), error=None)
    del base["error"]
    yield base
    for name, values in VALUES.items():
        for value in values:
            changed = dict(base)
            if value is MISSING:
                changed.pop(name, None)
            else:
                changed[name] = value
            yield changed
    for status in VALUES["status"]:
        for error in VALUES["error"][:6]:
            changed = dict(base, status=status, error=error)
            for name, value in (("status", status), ("error", error)):
                if value is MISSING:
                    del changed[name]
            yield changed
    yield dict(base, ocurred_at="typo")
    yield dict(base, extra=None)
    yield "not an event"
    yield ["a", "list"]
    yield None
    yield 12345678901234567890123


def encodings(value):
    """The event as JSON text: compact UTF-8 (orjson) and ASCII with \\u escapes (json)."""
    texts = [json.dumps(value, ensure_ascii=True)]
    with contextlib.suppress(TypeError):  # beyond 64 bits: only json writes it
        texts.append(orjson.dumps(value).decode())
    return texts


def body_of(texts):
    return ('{"events": [' + ", ".join(texts) + "]}").encode()


@pytest.fixture
def catalog(p100, p200):
    return Catalog()


@pytest.fixture
def limited_key(p100):
    key, _ = ApiKey.issue("ERP P100", systems=[System.objects.get(code="ERP")], plants=[p100])
    return key


def the_usual_way(body, **context):
    """What ingest made of a body before the fast path: decoded whole, checked by hand."""
    try:
        events = events_of(exact_json.loads(body))
    except (exact_json.JSONDecodeError, exact_json.TooDeep, BadRequest) as exc:
        return "refused", str(exc)
    return validate_events(events, now=NOW, **context)


def the_fast_way(body, **context):
    """What POST /api/v1/events makes of it now (http.parse_events, then ingest)."""
    events = split_batch(body)
    if events is None:
        return the_usual_way(body, **context)
    return validate_events(events, now=NOW, **context)


@pytest.mark.parametrize("limited", [False, True], ids=["any key", "key limited to ERP/P100"])
def test_each_event_is_judged_alike_alone_and_in_one_batch(catalog, limited_key, limited):
    context = {"catalog": catalog, "api_key": limited_key if limited else None}
    everything = []
    for value in variants():
        for text in encodings(value):
            body = body_of([text])
            assert the_fast_way(body, **context) == the_usual_way(body, **context), text[:300]
            everything.append(text)
    body = body_of(everything)
    fast, usual = the_fast_way(body, **context), the_usual_way(body, **context)
    assert fast == usual
    assert len(fast.repeats) > 20 and len(fast.rejected) > 100  # the corpus covers both


def test_valid_events_take_the_fast_path(catalog):
    events = sample_events(NOW) + [
        v for v in variants() if validate_event(v, catalog=catalog, now=NOW)[1] is None
    ]
    assert len(events) > 60
    typed = split_batch(body_of([orjson.dumps(e).decode() for e in events]))
    assert all(isinstance(item, TypedEvent) for item in typed)
    for item, value in zip(typed, events, strict=True):
        clean = check_typed(item, catalog=catalog, now=NOW)
        assert clean is not None, value
        assert clean == validate_event(value, catalog=catalog, now=NOW)[0]


@pytest.mark.parametrize(
    "body",
    [
        b'{"events": [{"event_id": "a",}]}',  # malformed: the position comes from the usual way
        b'{"events": [{"payload": 1e400}]}',  # infinity: refused, not stored as null
        b'{"events": [{"payload": "\\ud800"}]}',  # a lone surrogate
        b'{"events": [' + b"[" * 1030 + b"]" * 1030 + b"]}",  # past the usual nesting limit
        b'{"events": [' + b"[" * 1010 + b"]" * 1010 + b"]}",
        b'{"events": [], "more": 1}',
        b'{"events": {"event_id": "a"}}',
        b'{"events": []} trailing',
        b"\xef\xbb\xbf" + b'{"events": []}',
    ],
)
def test_bodies_the_fast_path_cannot_judge_go_the_usual_way(catalog, body):
    assert split_batch(body) is None
    assert the_fast_way(body, catalog=catalog) == the_usual_way(body, catalog=catalog)


def test_a_payload_nested_below_the_decoders_limit_is_refused_by_field_alike(catalog):
    text = json.dumps(dict(event(at=at(-1)), payload=nested(600)))  # orjson writes 254 levels
    body = body_of([text])
    fast = the_fast_way(body, catalog=catalog)
    assert fast == the_usual_way(body, catalog=catalog)
    assert list(fast.rejected[0]["errors"]) == ["payload"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def pool(name):
    """A field's value: one from the table above, or anything JSON."""
    return st.sampled_from(VALUES[name]) | json_values


@st.composite
def reported_events(draw):
    value = {}
    for name in VALUES:
        choice = draw(st.sampled_from(["valid", "valid", "valid", "table"]))
        if choice == "valid":
            value[name] = draw(st.sampled_from(VALID[name]))
        else:
            value[name] = draw(pool(name))
        if value[name] is MISSING:
            del value[name]
    if draw(st.booleans()):
        value["event_id"] = draw(st.sampled_from(["e-1", "e-2", "e-3"]))  # repeats in a batch
    return value


VALID = {
    "event_id": ["e-1", "e-2", "x" * 128, "Prüfung-ü"],
    "correlation_id": ["PO-1", "PO-2", "PO-ü"],
    "flow": ["order_release"],
    "step": ["released", "received", "acknowledged"],
    "source": ["ERP", "MES", "MW"],
    "target": [MISSING, None, "MES", "WMS"],
    "plant": ["P100", "P200"],
    "status": [MISSING, "ok", "retrying", "failed", "rejected"],
    "occurred_at": [at(-1), at(-60), at(4), "2026-11-20T06:30:00+01:00"],
    "business_keys": [MISSING, None, {}, {"order": "1"}, {"order": "1", "lot": "ロット"}],
    "error": [MISSING, ERROR, {"class": "transient"}],
    "payload": [MISSING, None, {"a": 1}, [1.5, "x"], {"n": 2**64 - 1}],
    "attributes": [MISSING, None, {}, {"message_id": "0af3"}],
}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(reported_events(), min_size=1, max_size=6), st.booleans(), st.booleans())
def test_any_batch_is_judged_alike(catalog, limited_key, batch, ascii_only, limited):
    texts = [json.dumps(value, ensure_ascii=ascii_only) for value in batch]
    context = {"catalog": catalog, "api_key": limited_key if limited else None}
    body = body_of(texts)
    assert the_fast_way(body, **context) == the_usual_way(body, **context)
