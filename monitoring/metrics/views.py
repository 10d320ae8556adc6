"""GET /metrics for Prometheus: only with "Authorization: Bearer $METRICS_TOKEN"; 404 while
METRICS_TOKEN is unset, so a hub that does not export metrics does not show the path."""

import os
import secrets

from django.conf import settings
from django.http import Http404, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from monitoring.metrics.collector import DatabaseCollector


def exposition():
    """Process counters (summed over gunicorn workers when PROMETHEUS_MULTIPROC_DIR is set),
    then the database families."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counters = CollectorRegistry()
        multiprocess.MultiProcessCollector(counters)
    else:
        counters = REGISTRY
    rows = CollectorRegistry(auto_describe=False)
    rows.register(DatabaseCollector())
    return generate_latest(counters) + generate_latest(rows)


def metrics_endpoint(request):
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off: set METRICS_TOKEN.")
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(sent.strip(), token):
        response = HttpResponse(
            "Send 'Authorization: Bearer <METRICS_TOKEN>'.\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse("Use GET.\n", status=405, content_type="text/plain")
        response["Allow"] = "GET, HEAD"
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
