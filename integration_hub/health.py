"""Liveness and readiness probes for load balancers and orchestrators."""

from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from kombu import Connection

from integration_hub.unavailable import unavailable_response


def check_database():
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker():
    url = settings.CELERY_BROKER_URL
    with Connection(url, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)


def worker_last_seen():
    """Informational: a worker may be scaled to zero on purpose, so this never fails readiness."""
    from integration_hub.models import WorkerHeartbeat

    beat = WorkerHeartbeat.objects.filter(name="worker").first()
    return beat.at.isoformat() if beat else None


CHECKS = {"database": check_database, "broker": check_broker}


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    """200 when the database and the broker answer; 503 (with Retry-After, like every door when
    the database is down) naming what is down and why."""
    results, down = {}, {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure means "not ready"; say what it was
            down[name] = f"{type(exc).__name__}: {exc}"[:500]
            results[name] = "down"
        else:
            results[name] = "ok"
    body = {"status": "down" if down else "ok", "checks": results}
    if not down:
        body["worker_last_seen"] = worker_last_seen()
    if down:
        body["errors"] = down
        return unavailable_response(request, body)
    return JsonResponse(body)
