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
