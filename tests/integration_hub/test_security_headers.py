"""Every page carries a Content Security Policy that allows only our own scripts, and no
template holds an inline script for it to block."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/plants/P100/", "/dead-letters/"])
def test_pages_allow_only_our_own_scripts(client, alice, p100, url):
    client.force_login(alice)
    policy = client.get(url)["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


def test_no_template_holds_an_inline_script_or_style_attribute():
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
    found = [
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.html")
        if path.parts[-2:] != ("alerts", "email.html")  # an email, not a page
        and (inline_script.search(path.read_text()) or " style=" in path.read_text())
    ]
    assert found == []


def test_plotly_style_rules_are_served_as_a_stylesheet(client):
    """plotly.js may not add its rules inline, so they are served as plotly/plotly.css."""
    from django.contrib.staticfiles import finders

    from integration_hub.staticfiles import page_placeholders

    css = Path(finders.find("plotly/plotly.css")).read_text()
    assert ".js-plotly-plot .plotly .modebar {position:absolute;" in css
    assert ".plotly-notifier .notifier-note {" in css
    assert not re.search(r"^[XY][ .,{]", css, re.M)  # the table's placeholders were replaced
    assert len(page_placeholders()) >= 1  # maplibre's style element, kept from injecting


@pytest.mark.parametrize("url", ["/plants/P100/", "/plants/P100/slos/order-release-latency/"])
def test_chart_pages_link_plotly_styles_so_plotly_adds_none(client, alice, p100, url):
    client.force_login(alice)
    page = client.get(url).content.decode()
    assert 'id="plotly.js-style-global" class="no-inline-styles" rel="stylesheet"' in page
    assert "plotly/plotly.css" in page and "plotly/plotly.min.js" in page


def test_only_the_api_docs_allow_inline_styles(client):
    """Swagger UI and Redoc style themselves at run time; their scripts stay our own."""
    for url in ("/api/docs/", "/api/redoc/"):
        policy = client.get(url)["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["style-src"] == "'self' 'unsafe-inline'", url
        assert directives["script-src"] == "'self'", url
    assert "unsafe-inline" not in client.get("/accounts/login/")["Content-Security-Policy"]
