"""Rows sent to PostgreSQL as one JSON parameter of arrays, read back by position and type."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from tracing.ingest.sql import json_rows, recordset, server_bound_cursor

pytestmark = pytest.mark.django_db

TYPED = [("id", "bigint"), ("name", "text"), ("at", "timestamptz"), ("doc", "jsonb")]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")
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
