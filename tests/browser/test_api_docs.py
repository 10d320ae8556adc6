"""Swagger UI and Redoc draw the API schema in Chromium under the Content Security Policy,
from local static files (no CDN)."""

import pytest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def watch(page):
    """CSP violations reported by the page, and requests that left this server."""
    seen = {"csp": [], "outside": []}
    page.on(
        "console",
        lambda m: seen["csp"].append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on(
        "requestfinished",
        lambda r: (
            seen["outside"].append(r.url)
            if not r.url.startswith(("http://localhost", "data:", "blob:"))
            else None
        ),
    )
    return seen


def test_swagger_ui_lists_both_reporters_doors(live_server, page):
    seen = watch(page)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector('[data-path="/v1/traces"]')
    assert page.locator('[data-path="/api/v1/events"]').count() == 1
    assert seen == {"csp": [], "outside": []}, seen
    assert page.console_errors == []


def test_redoc_draws_the_schema(live_server, page):
    seen = watch(page)
    page.goto(f"{live_server.url}/api/redoc/")
    page.locator("h2", has_text="Export OpenTelemetry spans (OTLP/HTTP)").first.wait_for()
    assert seen["outside"] == [], seen
    # Redoc's footer logo points at its CDN: the policy blocks it and the logo hides itself.
    logo = "cdn.redoc.ly/redoc/logo-mini.svg"
    assert [m for m in seen["csp"] if logo not in m] == []
    assert [m for m in page.console_errors if logo not in m] == []
