"""Run in a fresh process with DATABASE_READ_URL set (and DEBUG=1, so queries are recorded):
a few requests as PROBE_TOKEN's holder, printing per request how many queries each alias ran."""

import json
import os

import django

django.setup()

from django.db import connections, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402

from tests.events import event  # noqa: E402

api = Client(HTTP_AUTHORIZATION=f"Token {os.environ['PROBE_TOKEN']}")
browser = Client()
browser.post("/accounts/login/", {"username": "alice", "password": "alice-pw"})
requests = {
    "GET /api/v1/transactions": lambda: api.get("/api/v1/transactions?plant=P100"),
    "GET /api/v1/slos": lambda: api.get("/api/v1/slos"),
    "GET /plants/P100/": lambda: browser.get("/plants/P100/"),
    "POST /api/v1/events": lambda: api.post(
        "/api/v1/events",
        json.dumps(event(correlation_id="PO-PROBE")),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {os.environ['PROBE_KEY']}",
    ),
    "PATCH /api/v1/plants/P100": lambda: api.patch(
        "/api/v1/plants/P100", json.dumps({"name": "Renamed"}), content_type="application/json"
    ),
}
for name, call in requests.items():
    reset_queries()
    for alias in ("default", "replica"):
        connections[alias].queries_log.clear()
    response = call()
    print(
        json.dumps(
            {
                "call": name,
                "status": response.status_code,
                "default": [q["sql"][:60] for q in connections["default"].queries],
                "replica": [q["sql"][:60] for q in connections["replica"].queries],
            }
        )
    )
