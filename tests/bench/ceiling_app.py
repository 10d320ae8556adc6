"""The WSGI app of tests.bench.ceiling: answers a POSTed batch by replaying the SQL that the
hub's ingest sent to PostgreSQL for that batch, with none of the hub's per-event Python.

Each batch is found by its first event_id in the recording (CEILING_OPS, a pickle file, made
ready for the replay by tests.bench.ceiling.for_replay) and replayed on this worker's own
connection to DATABASE_URL in one transaction, after one read of an API key (the hub's request
reads its key too). The body is decoded by msgspec in C, as any ingest must decode it. GET
/healthz answers 200 for the bench's start-up check.
"""

import os
import pickle

import msgspec
import orjson
import psycopg

with open(os.environ["CEILING_OPS"], "rb") as recording:
    OPS = pickle.load(recording)

_connection = None


def _database():
    global _connection
    if _connection is None:
        _connection = psycopg.connect(os.environ["DATABASE_URL"])
    return _connection


def replay(ops):
    """Run one batch's recorded statements and COPYs in one transaction."""
    conn = _database()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT * FROM integration_hub_apikey LIMIT 1")
            cursor.fetchall()
            for kind, sql, data in ops:
                if kind == "copy":
                    with cursor.copy(sql) as copy:
                        for row in data:
                            copy.write_row(row)
                else:
                    cursor.execute(sql, data)
    except Exception:
        conn.rollback()
        raise
    conn.commit()


def app(environ, start_response):
    if environ["REQUEST_METHOD"] == "GET":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    events = msgspec.json.decode(body)["events"]
    replay(OPS[events[0]["event_id"]])
    answer = orjson.dumps({"accepted": len(events), "duplicates": 0, "rejected": []})
    start_response("202 Accepted", [("Content-Type", "application/json")])
    return [answer]
