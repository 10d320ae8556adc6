"""An unreachable or saturated database is a 503 with Retry-After, everywhere.

One rule for every door (the reporters' event and dead-letter doors, the APIs, the pages and
/readyz): when the database cannot take the request — it does not answer within
DB_CONNECT_TIMEOUT, refuses connections (too many clients, shutting down, starting up), or
gives up on a lock or a statement — the sender is told to come back later, never a 2xx
without the data stored and never a 500. Any other database error stays a 500: it is a bug.
"""

import sqlite3

import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse

# SQLSTATE classes and codes that mean "not now" rather than "wrong": connection exceptions,
# insufficient resources (too many connections, disk full), operator intervention (shutdown,
# starting up, statement timeout), and lock or serialization failures.
UNAVAILABLE_CLASSES = ("08", "53", "57")
UNAVAILABLE_CODES = frozenset({"40001", "40P01", "55P03"})
SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk i/o error", "busy")


class Saturated(Exception):
    """The service cannot take more work now without breaking a promise (e.g. correlation more
    than a second behind): a 503 telling the sender why and when to come back."""

    def __init__(self, message, retry_after=1):
        super().__init__(message)
        self.message, self.retry_after = message, retry_after


def is_unavailable(exc):
    """Whether a database exception means the database cannot take work now."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate:
        return sqlstate[:2] in UNAVAILABLE_CLASSES or sqlstate in UNAVAILABLE_CODES
    if isinstance(cause, sqlite3.Error):
        message = str(cause).lower()
        return any(text in message for text in SQLITE_UNAVAILABLE)
    # psycopg raises connection failures (refused, timed out, closed) without a SQLSTATE.
    return True


def wants_html(request):
    accept = request.headers.get("Accept", "")
    return not request.path.startswith(("/api/", "/v1/")) and "text/html" in accept


def unavailable_response(request, body=None, *, message=None, wait=None):
    """503 with Retry-After: JSON for APIs and machines, a short page for browsers."""
    wait = settings.DB_RETRY_AFTER_SECONDS if wait is None else wait
    message = message or f"The database is unavailable; nothing was stored. Retry after {wait} s."
    if body is None and wants_html(request):
        response = HttpResponse(
            "<!doctype html><title>Unavailable</title>"
            f"<h1>Temporarily unavailable</h1><p>{message}</p>",
            status=503,
            content_type="text/html; charset=utf-8",
        )
    else:
        payload = body if body is not None else {"error": message, "retry_after": wait}
        response = HttpResponse(orjson.dumps(payload), status=503, content_type="application/json")
    response["Retry-After"] = str(wait)
    return response
