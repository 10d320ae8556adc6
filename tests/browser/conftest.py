"""Playwright in Debian's Chromium against pytest-django's live server.

No browser download: Chromium is /usr/bin/chromium (or $CHROMIUM). When a test fails, a
screenshot of the page it was on goes to test-artifacts/ (git-ignored).
"""

import os
import re
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def browser(live_server):
    """Chromium for one test, started after the test's database is ready.

    Playwright's sync API keeps an asyncio loop on this thread while it runs. Django's async
    guard is lifted meanwhile (the ORM calls between browser steps are plain synchronous
    calls), and ORM connections opened in that state are closed before it stops, so the
    database is flushed and dropped over the usual connection.
    """
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            connections.close_all()
            chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser context at laptop size; screenshots under test-artifacts/ on failure."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.set_default_timeout(15_000)
    page = context.new_page()
    # Script errors, anything the Content Security Policy blocked (or a script gave up on
    # because of it), and failed requests other than the favicon Chromium asks for.
    page.console_errors = []
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    page.on(
        "console",
        lambda m: (
            page.console_errors.append(m.text)
            if "Content Security Policy" in m.text or "CSP" in m.text
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            page.console_errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        for n, open_page in enumerate(context.pages):
            open_page.screenshot(path=str(ARTIFACTS / f"{name}-{n}.png"), full_page=True)
    context.close()


def log_in(page, live_server, username, password):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
