"""PostgreSQL plumbing of the ingest path: statements whose rows travel as one parameter.

psycopg writes array parameters (unnest) in Python, quoting each element, and Django's cursors
bind client-side; for a 1,000-event batch either costs more than the statement. So rows go as
one JSON text written by orjson in C, on a cursor that sends parameters apart from the SQL.
"""

import functools
from contextlib import contextmanager

import orjson
from django.db import connection


def pg_insert(table, typed_columns, rows, *, suffix=""):
    """INSERT … SELECT FROM the rows sent as one JSON parameter; returns RETURNING rows."""
    with server_bound_cursor() as cursor:
        cursor.execute(
            insert_select(table, typed_columns, suffix), [json_rows(typed_columns, rows)]
        )
        return cursor.fetchall() if "RETURNING" in suffix else []


def insert_select(table, typed_columns, suffix=""):
    """The statement of pg_insert: its one parameter is the rows' JSON (json_rows)."""
    names = ", ".join(_quoted(name) for name, _ in typed_columns)
    return f"INSERT INTO {table} ({names}) SELECT {names} FROM {recordset(typed_columns)} {suffix}"


def insert_models(objs, *, ignore_conflicts=False):
    """bulk_create these model instances (as built: Model.__init__ filled the defaults); on
    PostgreSQL by one pg_insert of every concrete column but the primary key, as bulk_create
    compiles its statement anew on each call, which cost more than inserting a batch's rows."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    pg_insert(
        model._meta.db_table,
        [(f.column, pg_type(f)) for f in fields],
        [[f.pre_save(obj, True) for f in fields] for obj in objs],
        suffix="ON CONFLICT DO NOTHING" if ignore_conflicts else "",
    )


# The PostgreSQL type a model field's value is read as from a JSON row (recordset), by the
# field's kind, whatever database this process uses (SQLite gives other column types); text
# for the rest (not varchar(n): a cast to it would cut a value short).
_PG_TYPE_OF = {
    "ForeignKey": "bigint",
    "OneToOneField": "bigint",
    "JSONField": "jsonb",
    "DateTimeField": "timestamptz",
    "PositiveIntegerField": "integer",
    "IntegerField": "integer",
    "BooleanField": "boolean",
}


def pg_type(field):
    return _PG_TYPE_OF.get(field.get_internal_type(), "text")


def recordset(typed_columns):
    """The rows of the JSON parameter as a table `v` with these columns and types.

    One JSON text, written by orjson in C: psycopg writes array parameters (unnest) in Python,
    quoting each element, which cost more CPU than the statements themselves. Each row is a
    JSON array read by position: with an object per row, PostgreSQL lexed and sorted every
    column name of every row, which cost more than the values.
    """
    columns = ", ".join(_by_position(i, name, kind) for i, (name, kind) in enumerate(typed_columns))
    return f"(SELECT {columns} FROM jsonb_array_elements(%s::jsonb) AS r) AS v"


def _by_position(i, name, kind):
    name = _quoted(name)
    if kind == "jsonb":
        return f"nullif(r->{i}, 'null') AS {name}"  # JSON null is SQL NULL, as for the others
    if kind == "text":
        return f"r->>{i} AS {name}"
    return f"(r->>{i})::{kind} AS {name}"


def _quoted(name):
    return connection.ops.quote_name(name)  # a column may be named like a keyword ("at")


def json_rows(typed_columns, rows):
    """The rows as one JSON text of arrays, each in the order of `typed_columns`."""
    rows = list(rows)
    width = len(typed_columns)
    if any(len(row) != width for row in rows):
        raise ValueError(f"Every row needs {width} values, one per column.")
    return orjson.dumps(rows).decode()


@contextmanager
def server_bound_cursor():
    """A psycopg cursor that sends parameters separately from the SQL.

    Django's cursors bind client-side (quoting every array element into the SQL text), which
    costs more than the insert itself for a 1,000-event batch. Same connection, same
    transaction, and psycopg's errors become Django's as on its own cursors, so a deadlock is
    retried and a database gone is a 503 (integration_hub/unavailable.py), not a 500.
    """
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


@functools.cache
def event_sequence(table):
    """The sequence behind `table`'s id column."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        return cursor.fetchone()[0]
