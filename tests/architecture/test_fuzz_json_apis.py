"""A fuzz pass over the JSON APIs: any JSON value, in any field, gets a 4xx naming what is
wrong or a 2xx, never a 5xx (hypothesis generates the values; the database is the real one)."""

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from integration_hub.models import ApiKey
from tests.conftest import token_client as api_for
from tests.events import event

pytestmark = pytest.mark.django_db

# Any JSON value: text with any code point (NUL, lone surrogates), huge and tiny numbers, nesting.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
EVENT_FIELDS = st.sampled_from(
    ["event_id", "correlation_id", "flow", "step", "source", "target", "plant", "status",
     "occurred_at", "business_keys", "error", "payload", "attributes"]
)  # fmt: skip
REPORT = {
    "id": "mw-fuzz", "correlation_id": "PO-1", "flow": "order_release", "source": "MW",
    "target": "MES", "plant": "P100", "payload": {},
    "error": {"class": "transient", "code": "E", "message": "m"},
}  # fmt: skip
REPORT_FIELDS = st.sampled_from([*REPORT, "step", "headers", "attempts", "first_failed_at",
                                 "last_failed_at", "business_keys"])  # fmt: skip
RULE_FIELDS = ["name", "kind", "plant", "flow", "system", "slo", "severity", "threshold_count",
               "threshold_seconds", "muted_until", "enabled"]  # fmt: skip
FUZZ = settings(
    max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip


def dumps(body):
    """JSON text as a sender might write it: non-ASCII kept, lone surrogates escaped."""
    return json.dumps(body, ensure_ascii=True)


@pytest.fixture
def key(p100, p200):
    return ApiKey.issue("fuzz")[1]


@FUZZ
@given(name=EVENT_FIELDS, value=JSON)
@example(name="status", value=[])  # once a 500: an unhashable status reached a set lookup
def test_any_value_in_any_event_field_is_never_a_server_error(client, key, name, value):
    body = {**event("released", correlation_id="PO-FUZZ"), name: value}
    response = client.post("/api/v1/events", dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {key}")  # fmt: skip
    assert response.status_code in (202, 400, 413), response.content[:300]


@FUZZ
@given(name=REPORT_FIELDS, value=JSON)
def test_any_value_in_any_dead_letter_field_is_never_a_server_error(client, key, name, value):
    body = {**REPORT, name: value}
    response = client.post("/api/v1/dead-letters", dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {key}")  # fmt: skip
    assert response.status_code in (200, 201, 400, 413), response.content[:300]


@FUZZ
@given(body=st.dictionaries(st.sampled_from(["action", "ids", "filter", "reason", "assignee",
                                             "dry_run"]), JSON, max_size=4))  # fmt: skip
def test_any_bulk_request_is_never_a_server_error(alice, p100, body):
    response = api_for(alice).post("/api/v1/dead-letters/bulk", body, format="json")
    assert response.status_code < 500, response.content[:300]


@FUZZ
@given(body=st.dictionaries(st.sampled_from(RULE_FIELDS), JSON, max_size=5))
def test_any_alert_rule_is_never_a_server_error(alice, p100, body):
    response = api_for(alice).post("/api/v1/alert-rules", body, format="json")
    assert response.status_code < 500, response.content[:300]


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["q", "key", "plant", "flow", "state", "from",
                                               "to", "page", "page_size", "cursor", "age",
                                               "error_class", "sort"]),
                              st.text(max_size=30), max_size=4))  # fmt: skip
def test_any_query_string_is_never_a_server_error(alice, p100, params):
    api = api_for(alice)
    clean = params
    for url in ("/api/v1/transactions", "/api/v1/dead-letters", "/api/v1/dead-letter-groups",
                "/api/v1/stuck", "/api/v1/alerts"):  # fmt: skip
        response = api.get(url, clean)
        assert response.status_code < 500, (url, clean, response.content[:300])
