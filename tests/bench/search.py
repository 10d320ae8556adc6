"""Search bench: top up to N events in-process, then time transaction search.

Server time = the DRF view GET /api/v1/transactions (token authentication, plant scoping for a
supervisor of all plants, the selector, cursor pagination to the first page of 50,
serialization, JSON rendering) called in this process, without HTTP or middleware. The same
requests through gunicorn (HTTP, client included) are timed beside it for reference.
"""

import http.client
import statistics
import time
from urllib.parse import urlencode, urlsplit

from tests.bench.common import log

WARM_UP = 5


def top_up(stream_iter, pg, total, batch_size):
    """Ingest events from the stream in-process (tracing.ingest.ingest_events) until `total`."""
    from tracing.ingest.pipeline import ingest_events

    have = pg.execute("SELECT count(*) FROM tracing_traceevent").fetchone()[0]
    missing = max(0, total - have)
    log(f"topping up {missing:,} events in-process to {total:,}")
    started, done = time.perf_counter(), 0
    while done < missing:
        batch = [next(stream_iter) for _ in range(min(batch_size, missing - done))]
        ingest_events(batch)
        done += len(batch)
        if done % 100_000 < batch_size:
            log(f"  {have + done:,} events")
    seconds = time.perf_counter() - started
    log("VACUUM ANALYZE")
    for table in ("tracing_traceevent", "tracing_transaction", "tracing_businesskey"):
        pg.execute(f"VACUUM ANALYZE {table}")
    return {"topped_up": done, "top_up_seconds": round(seconds, 1)}


def sample(pg, sql, n):
    pg.execute("SELECT setseed(0.4711)")
    return [row[0] for row in pg.execute(sql + " ORDER BY random() LIMIT %s", [n]).fetchall()]


def queries(pg, n):
    orders = sample(pg, "SELECT value FROM tracing_businesskey WHERE name = 'order'", n)
    materials = sample(
        pg,
        "SELECT value FROM (SELECT DISTINCT value FROM tracing_businesskey"
        " WHERE name = 'material') m",
        n,
    )
    corrs = sample(pg, "SELECT correlation_id FROM tracing_transaction", n)
    return {
        "by_key": [{"key": f"order:{v}"} for v in orders],
        "by_correlation_id": [{"correlation_id": v} for v in corrs],
        "by_broad_key": [{"key": f"material:{v}"} for v in materials],
        "search_box": [{"q": v} for v in orders],
    }


def make_reader():
    """A supervisor of all five plants, with an API token: searches go through plant scoping."""
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from integration_hub.models import Plant, PlantMembership

    # get_or_create: a database another bench loaded may have this user, with fewer plants.
    user = User.objects.get_or_create(username="bench-supervisor")[0]
    user.groups.add(Group.objects.get(name="supervisor"))
    PlantMembership.objects.bulk_create(
        [PlantMembership(user=user, plant=plant) for plant in Plant.objects.all()],
        ignore_conflicts=True,
    )
    return Token.objects.get_or_create(user=user)[0].key


def in_process_timer(token):
    """The view as gunicorn runs it, minus HTTP and middleware: token auth, query, render."""
    from rest_framework.test import APIRequestFactory

    from tracing.api.views import TransactionList

    factory, view = APIRequestFactory(), TransactionList.as_view()
    headers = {
        "HTTP_HOST": "127.0.0.1",
        "HTTP_ACCEPT": "application/json",
        "HTTP_AUTHORIZATION": f"Token {token}",
    }

    def call(params):
        request = factory.get("/api/v1/transactions", params, **headers)
        started = time.perf_counter()
        response = view(request)
        response.render()
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.content[:300]
        return elapsed, len(response.data["results"])

    return call


def http_timer(base_url, token):
    host = urlsplit(base_url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}

    def call(params):
        started = time.perf_counter()
        conn.request("GET", "/api/v1/transactions?" + urlencode(params), headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        elapsed = time.perf_counter() - started
        assert resp.status == 200, body[:300]
        return elapsed, None

    return call


def percentiles(times):
    ms = sorted(t * 1000 for t in times)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[-1]
    return round(statistics.median(ms), 1), round(p95, 1)


def run(*, pg, base_url, requests):
    cases = queries(pg, requests + WARM_UP)
    token = make_reader()
    timers = {"server": in_process_timer(token), "http": http_timer(base_url, token)}
    results = {
        "requests": requests,
        "reader": "supervisor of all plants, token auth",
        "timing": "server: in-process DRF view incl. token auth + render; http: via gunicorn",
    }
    for name, params_list in cases.items():
        for label, call in timers.items():
            for params in params_list[:WARM_UP]:
                call(params)  # warm-up: connections, plans, caches (not counted)
            times, rows = [], []
            for params in params_list[WARM_UP:]:
                elapsed, found = call(params)
                times.append(elapsed)
                rows.append(found)
            p50, p95 = percentiles(times)
            entry = results.setdefault(name, {})
            entry[f"{label}_p50_ms"], entry[f"{label}_p95_ms"] = p50, p95
            if label == "server":
                entry["mean_rows"] = round(statistics.mean(rows), 1)
    return results
