"""From an alert email to a replay the target received, counted in clicks in a real browser.

The email comes from a local SMTP server this test starts; its first link is followed; the
analyst signs in (not counted: that is who they are, not diagnosis) and clicks. The replay is
sent by the worker's own code (`deliver_batch`, as the `monitoring.deliver_replays` task runs
it) to a local HTTP target, straight after the click commits instead of through the broker.
"""

import re
import time

import pytest

from monitoring.alerts import delivery as alert_delivery
from monitoring.alerts.lifecycle import evaluate_alerts
from monitoring.models import AlertChannel, AlertRule, Delivery
from monitoring.replay import delivery as replay_delivery
from monitoring.replay import requests
from tests.events import PAYLOAD, dead_letter
from tests.receivers.alerts import SMTPReceiver

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def sent_at_once(monkeypatch):
    """Deliveries and replays are sent by the code the workers run, right after commit."""
    monkeypatch.setattr(alert_delivery, "enqueue", lambda ids, countdown=None: None)
    monkeypatch.setattr(
        requests,
        "enqueue",
        lambda pairs, countdown=None: replay_delivery.deliver_batch([r for r, _ in pairs]),
    )


def alert_email(smtp):
    AlertRule.objects.create(
        name="New failure cause", kind="dead_letter_new_group", severity="critical"
    )
    AlertChannel.objects.create(
        name="P100 support", kind="email", recipients=["support@example.com"], min_severity="info"
    )
    assert evaluate_alerts()["fired"] == 1
    for row in Delivery.objects.all():
        assert alert_delivery.deliver(row.id) == "sent"
    [mail] = smtp.messages
    return SMTPReceiver.text_and_html(mail["message"])[1]


def test_from_an_alert_email_to_a_received_replay_in_four_clicks(
    live_server, settings, dave, smtp, mes_target, sent_at_once, page
):
    settings.HUB_BASE_URL = live_server.url
    letter = dead_letter("PO-77", code="MAT_UNKNOWN", message="Material M-77 unknown in MES")
    html = alert_email(smtp)
    first_link = re.search(r'<a href="([^"]+)"', html)[1].replace("&amp;", "&")
    assert first_link.startswith(f"{live_server.url}/dead-letters/?")

    page.goto(first_link)  # signed out: the sign-in page, which returns to the link
    page.fill("#id_username", "dave")
    page.fill("#id_password", "dave-pw")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r".*/dead-letters/\?.*fingerprint=.*"))
    assert "Material M-77 unknown in MES" in page.inner_text("main")

    clicks = 0

    def click(selector):
        nonlocal clicks
        page.click(selector)
        clicks += 1

    click('table.dl-letters a:has-text("PO-77")')
    page.wait_for_url(f"**/dead-letters/{letter.pk}/")
    assert "R-4712-02" in page.locator("pre.payload").first.inner_text()
    payload_clicks = clicks

    click("#open-replay")
    page.wait_for_selector("text=Exactly what will be sent")
    click('button:has-text("Replay now")')
    page.wait_for_url(f"**/dead-letters/{letter.pk}/")
    deadline = time.monotonic() + 10
    while not mes_target.requests and time.monotonic() < deadline:
        time.sleep(0.05)

    assert payload_clicks <= 2 and clicks <= 4, (payload_clicks, clicks)
    assert (payload_clicks, clicks) == (1, 3)
    [received] = mes_target.requests
    assert received["body"] == PAYLOAD
    assert received["headers"]["Idempotency-Key"] == f"hub-dl-{letter.id}-v1"
    assert "Replay queued" in page.inner_text("main")
    assert "Replayed" in page.locator("h1").inner_text()
    assert page.console_errors == []
