"""Rows sent to PostgreSQL as one JSON parameter of arrays, read back by position and type, and
model instances inserted that way."""

from datetime import UTC, datetime

import pytest

from integration_hub.models import Flow, Plant, System
from tracing.ingest.sql import insert_models, json_rows, recordset, server_bound_cursor
from tracing.models import DeadLetter

pytestmark = pytest.mark.django_db

TYPED = [("id", "bigint"), ("name", "text"), ("at", "timestamptz"), ("doc", "jsonb")]


@pytest.mark.postgres
def test_rows_come_back_by_position_with_their_types_and_nulls():
    at = datetime(2026, 12, 4, 3, 4, 5, 678000, tzinfo=UTC)
    rows = [(1, 'a,"b"', at, {"k": [1, None]}), (2, None, None, None)]
    with server_bound_cursor() as cursor:
        cursor.execute(
            f"SELECT id, name, at, doc::text, doc IS NULL FROM {recordset(TYPED)} ORDER BY id",
            [json_rows(TYPED, rows)],
        )
        got = cursor.fetchall()
    assert got == [(1, 'a,"b"', at, '{"k": [1, null]}', False), (2, None, None, None, True)]


def test_a_row_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match="4 values"):
        json_rows(TYPED, [(1, "a", None)])


def test_insert_models_writes_what_bulk_create_writes(p100):
    """The raw insert (PostgreSQL) gives a row every column and default the model would."""
    at = datetime(2026, 11, 20, 6, 1, 2, 345000, tzinfo=UTC)

    def built(n):
        return DeadLetter(
            external_id=f"x-{n}", flow=Flow.objects.get(code="order_release"),
            plant=Plant.objects.get(code="P100"), source=System.objects.get(code="ERP"),
            correlation_id="PO-1", step="received", error_class="transient", error_code="E1",
            error_message='line\nand "quotes" ü', payload={"a": [1, None, "é"], "b": {}},
            business_keys={"order": "1"}, first_failed_at=at, last_failed_at=at,
            created_at=at, updated_at=at,
        )  # fmt: skip

    insert_models([built(1)])
    DeadLetter.objects.bulk_create([built(2)])
    raw, django = (DeadLetter.objects.filter(external_id=f"x-{n}").values().get() for n in (1, 2))
    assert raw.pop("id") != django.pop("id")
    assert (raw.pop("external_id"), django.pop("external_id")) == ("x-1", "x-2")
    assert raw == django
    assert (raw["state"], raw["headers"], raw["attempts"], raw["edited_payload"]) == (
        "new", {}, 1, None,
    )  # fmt: skip
