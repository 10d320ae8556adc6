"""Every notice leads to its cause first: the dead-letter group, the stuck list, the SLO page,
the silent system's latest transactions; the dashboard and the history come after."""

from datetime import timedelta

import pytest

from integration_hub.models import System
from monitoring.alerts.lifecycle import evaluate_alerts
from monitoring.models import SLO, AlertRule, SLOStatus
from tests.monitoring.alerts.conftest import (
    NOW,
    dead_letter,
    email_channel,
    send_all,
    stuck_release,
    stuck_rule,
    webhook_channel,
)
from tests.receivers.alerts import SMTPReceiver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]
BASE = "http://127.0.0.1:8000"
FAST = {"5m": 20.0, "30m": 8.0, "1h": 15.0, "6h": 7.0, "3d": 2.0}


def new_group(p100):
    AlertRule.objects.create(name="New failure cause", kind="dead_letter_new_group")
    dead_letter(1, plant=p100, fingerprint="fp-m77", at=NOW - timedelta(minutes=1))
    return f"{BASE}/dead-letters/?plant=P100&flow=order_release&fingerprint=fp-m77"


def stuck(p100):
    stuck_rule(plant=p100)
    stuck_release()
    return f"{BASE}/transactions/?plant=P100&flow=order_release&state=stuck"


def slo_burn(p100):
    AlertRule.objects.create(name="Page", kind="slo_fast_burn", severity="critical")
    slo = SLO.objects.get(slug="order-release-latency")
    SLOStatus.objects.create(
        slo=slo, plant=p100, burn_rates=FAST, status="breaching", evaluated_at=NOW
    )
    return f"{BASE}/plants/P100/slos/order-release-latency/"


def silence(p100):
    mes = System.objects.get(code="MES")
    AlertRule.objects.create(
        name="MES quiet", kind="silence", system=mes, plant=p100, threshold_seconds=600
    )
    return f"{BASE}/transactions/?plant=P100&system=MES"


@pytest.mark.parametrize("make", [new_group, stuck, slo_burn, silence])
def test_each_kind_of_notice_links_to_its_cause_then_the_dashboard(make, p100, smtp, hook):
    cause = make(p100)
    email_channel()
    webhook_channel(hook, name="hub json")
    webhook_channel(hook, name="slack", preset="slack")
    webhook_channel(hook, name="teams", preset="teams")
    assert evaluate_alerts(NOW)["fired"] == 1
    assert set(send_all(NOW)) == {"sent"}

    document = next(r["json"] for r in hook.requests if "links" in r["json"])
    assert set(document["links"]) == {"cause", "dashboard", "alert"}
    assert document["links"]["cause"] == cause
    assert document["links"]["dashboard"].startswith(f"{BASE}/plants/P100/")
    assert document["cause_title"].startswith("Open")

    slack_text = next(r["json"]["text"] for r in hook.requests if "text" in r["json"])
    assert slack_text.split("\n")[-1].startswith(f"<{cause}|Open")
    card = next(r["json"] for r in hook.requests if r["json"].get("type") == "message")
    actions = card["attachments"][0]["content"]["actions"]
    assert actions[0]["url"] == cause and actions[1]["url"] == document["links"]["dashboard"]

    [mail] = smtp.messages
    text, html = SMTPReceiver.text_and_html(mail["message"])
    assert text.index(cause) < text.index(document["links"]["dashboard"])
    first_link = html.split('<a href="', 1)[1].split('"', 1)[0]
    assert first_link.replace("&amp;", "&") == cause


def test_a_notice_without_a_narrower_page_keeps_the_dashboard_first(p100, hook):
    AlertRule.objects.create(
        name="Too many open", kind="dead_letters_open", threshold_count=0, plant=p100
    )
    dead_letter(1, plant=p100, fingerprint="fp-a")
    webhook_channel(hook)
    evaluate_alerts(NOW)
    send_all(NOW)
    [request] = hook.requests
    links = request["json"]["links"]
    # open dead letters of a plant: the inbox for that plant, not one group
    assert links["cause"] == f"{BASE}/dead-letters/?plant=P100"
