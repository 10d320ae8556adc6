"""Run in a fresh process whose DATABASE_URL points where no database answers: every URL of
the urlconf, with every method, as a token holder and as a signed-in browser. Prints one JSON
line per call: method, path, status, Retry-After, whether a 2xx came back."""

import json
import re
import time
import uuid

import django

django.setup()

from django.test import Client  # noqa: E402
from django.urls import URLPattern, URLResolver, get_resolver  # noqa: E402

VALUES = {"int": "1", "uuid": str(uuid.uuid4()), "slug": "x", "path": "x/y", "str": "P100"}


def walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def concrete(route):
    """A path for a route: regex groups and converters filled in with plausible values."""
    route = re.sub(r"\(\?P<\w+>[^)]*\)", "P100", route)
    route = re.sub(r"<(?:(\w+):)?\w+>", lambda m: VALUES.get(m.group(1) or "str", "x"), route)
    for token in ("^", "$", "\\Z", "\\", "?"):
        route = route.replace(token, "")
    return "/" + route


api = Client(
    HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567",
    HTTP_ACCEPT="application/json",
)
browser = Client(HTTP_ACCEPT="text/html")
browser.cookies["sessionid"] = "a" * 32
paths = sorted({concrete(route) for route in walk(get_resolver().url_patterns)})
reporter = Client(HTTP_AUTHORIZATION="Bearer ihk_" + "k" * 43)
NAMES = {id(reporter): "reporter", id(api): "api", id(browser): "browser"}
calls = [(reporter, "post", "/api/v1/events"), (reporter, "post", "/api/v1/dead-letters")]
calls += [
    (api if path.startswith("/api/") else browser, method, path)
    for path in paths
    for method in ("get", "post", "put", "patch", "delete")
]
for client, method, path in calls:
    started = time.monotonic()
    if method == "get":
        response = client.get(path)
    else:
        response = getattr(client, method)(
            path, json.dumps({"event_id": "e-1"}), content_type="application/json"
        )
    print(
        json.dumps(
            {
                "call": f"{method.upper()} {path} {NAMES[id(client)]}",
                "status": response.status_code,
                "retry_after": response.get("Retry-After"),
                "seconds": round(time.monotonic() - started, 2),
            }
        )
    )
