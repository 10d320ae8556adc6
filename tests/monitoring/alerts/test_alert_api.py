"""/api/v1/alert-channels, /api/v1/alert-rules, /api/v1/alerts, the history page, the command."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from monitoring.alerts.delivery import deliver
from monitoring.alerts.lifecycle import evaluate_alerts
from monitoring.models import Alert, AlertChannel, AlertRule, Delivery
from tests.monitoring.alerts.conftest import NOW, stuck_release, stuck_rule
from tests.receivers.alerts import WebhookReceiver

# Deliveries are driven by the test (deliver()); what would go to the broker is recorded.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]


@pytest.fixture
def hook():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def create_webhook(api, hook, **fields):
    body = {
        "name": "Ops",
        "kind": "webhook",
        "url": hook.url,
        "plants": ["P100"],
        "flows": ["order_release"],
        "min_severity": "warning",
        **fields,
    }
    return api.post("/api/v1/alert-channels", body, format="json")


def test_a_webhook_channel_returns_its_secret_once(admin_api, hook, p100):
    response = create_webhook(admin_api, hook)
    assert response.status_code == 201
    data = response.json()
    assert data["secret"].startswith("whsec_")
    channel = AlertChannel.objects.get()
    assert channel.secret == data["secret"]
    assert data["plants"] == ["P100"] and data["flows"] == ["order_release"]
    assert data["min_severity"] == "warning" and data["has_secret"] is True

    listed = admin_api.get("/api/v1/alert-channels").json()
    assert [c["name"] for c in listed] == ["Ops"]
    assert "secret" not in listed[0]
    assert "secret" not in admin_api.get(f"/api/v1/alert-channels/{channel.id}").json()

    rotated = admin_api.post(f"/api/v1/alert-channels/{channel.id}/rotate-secret").json()
    channel.refresh_from_db()
    assert rotated["secret"] == channel.secret != data["secret"]
    assert channel.previous_secret == data["secret"]


def test_channels_validate_and_update(admin_api, hook, p100):
    bad = admin_api.post(
        "/api/v1/alert-channels", {"name": "x", "kind": "webhook"}, format="json"
    ).json()
    assert "url" in bad
    bad = admin_api.post(
        "/api/v1/alert-channels",
        {"name": "x", "kind": "email", "recipients": ["not-an-address"]},
        format="json",
    ).json()
    assert "recipients" in bad
    assert AlertChannel.objects.count() == 0

    created = admin_api.post(
        "/api/v1/alert-channels",
        {"name": "Mail", "kind": "email", "recipients": ["a@example.com"]},
        format="json",
    ).json()
    assert "secret" not in created
    admin_api.patch(f"/api/v1/alert-channels/{created['id']}", {"plants": ["P100"]}, format="json")
    assert list(AlertChannel.objects.get().plants.values_list("code", flat=True)) == ["P100"]
    admin_api.delete(f"/api/v1/alert-channels/{created['id']}")
    assert AlertChannel.objects.count() == 0


def test_only_admins_see_channels(supervisor_api, admin_api, hook, p100):
    create_webhook(admin_api, hook)
    assert supervisor_api.get("/api/v1/alert-channels").status_code == 403
    assert supervisor_api.post("/api/v1/alert-channels", {}, format="json").status_code == 403
    assert AlertChannel.objects.count() == 1


def test_send_test_queues_a_delivery_that_a_worker_sends(admin_api, hook, enqueued, p100):
    created = create_webhook(admin_api, hook).json()
    channel_id, hook.secret = created["id"], created["secret"]
    response = admin_api.post(f"/api/v1/alert-channels/{channel_id}/test")
    assert response.status_code == 202
    delivery = Delivery.objects.get()
    assert response.json()["delivery"]["id"] == delivery.id and delivery.is_test
    deliver(delivery.id)  # what the worker does once the request committed
    [request] = hook.requests
    assert request["json"]["type"] == "alert.test" and request["verified"]
    tests = admin_api.get(f"/api/v1/alert-channels/{channel_id}/test").json()
    assert tests[0]["state"] == "sent" and tests[0]["attempts"] == 1


def test_rules_are_created_validated_and_muted_through_the_api(admin_api, supervisor_api, p100):
    bad = admin_api.post(
        "/api/v1/alert-rules", {"name": "Quiet", "kind": "silence"}, format="json"
    ).json()
    assert "system" in bad and "threshold_seconds" in bad
    body = {
        "name": "MES quiet at P100",
        "kind": "silence",
        "system": "MES",
        "plant": "P100",
        "threshold_seconds": 600,
        "severity": "critical",
    }
    created = admin_api.post("/api/v1/alert-rules", body, format="json").json()
    assert created["repeat_interval_seconds"] == 4 * 3600
    assert created["system"] == "MES" and created["muted"] is False
    admin_api.patch(
        f"/api/v1/alert-rules/{created['id']}",
        {"muted_until": "2099-01-01T00:00:00Z", "mute_reason": "MES migration"},
        format="json",
    )
    rule = AlertRule.objects.get()
    assert rule.mute_reason == "MES migration" and rule.is_muted(NOW)
    assert supervisor_api.get("/api/v1/alert-rules").json()[0]["muted"] is True
    assert supervisor_api.post("/api/v1/alert-rules", body, format="json").status_code == 403
    assert AlertRule.objects.count() == 1


def test_alerts_list_their_deliveries_and_respect_plants(
    admin_api, p200_supervisor_api, hook, p100, p200
):
    stuck_rule()
    create_webhook(admin_api, hook)
    stuck_release("PO-1", plant="P100")
    stuck_release("PO-2", plant="P200")
    evaluate_alerts(NOW)
    [d] = Delivery.objects.all()  # the channel follows P100 only
    deliver(d.id, NOW)

    items = admin_api.get("/api/v1/alerts", {"state": "firing"}).json()["results"]
    assert {a["plant"] for a in items} == {"P100", "P200"}
    p100_alert = next(a for a in items if a["plant"] == "P100")
    assert p100_alert["transitions"][0]["kind"] == "fired"
    [delivery] = p100_alert["deliveries"]
    assert delivery["state"] == "sent" and delivery["target"] == hook.url
    assert delivery["channel"]["name"] == "Ops" and delivery["transition"] == "fired"

    carol_sees = p200_supervisor_api.get("/api/v1/alerts").json()["results"]
    assert [a["plant"] for a in carol_sees] == ["P200"]
    assert "target" not in str(carol_sees)
    p100_id = Alert.objects.get(plant=p100).id
    assert p200_supervisor_api.get(f"/api/v1/alerts/{p100_id}").status_code == 404
    assert admin_api.get("/api/v1/alerts", {"state": "nope"}).status_code == 400


def test_history_page_shows_what_fired_and_what_was_sent(client, alice, hook, p100):
    stuck_rule(plant=p100)
    AlertChannel.objects.create(name="Ops hook", kind="webhook", url=hook.url, secret="whsec_AA==")
    stuck_release()
    evaluate_alerts(NOW)
    deliver(Delivery.objects.get().id, NOW)
    client.force_login(alice)
    page = client.get("/alerts/").content.decode()
    assert "Order releases stuck" in page and "1 stuck order_release transactions" in page
    assert "Ops hook" in page and "Sent" in page and hook.url in page
    assert client.get("/alerts/", {"state": "resolved"}).content.decode().count("alert-row") == 0


def test_evaluate_alerts_command_runs_one_evaluation(p100, capsys):
    stuck_rule(plant=p100)
    stuck_release(at=datetime.now(UTC).replace(microsecond=0) - (NOW - NOW.replace(hour=10)))
    call_command("evaluate_alerts")
    assert "fired 1" in capsys.readouterr().out
    assert Alert.objects.get().state == "firing"


def test_ensure_demo_alerts_is_idempotent(settings, tmp_path, p100):
    settings.VAR_DIR = tmp_path
    call_command("ensure_demo_alerts")
    call_command("ensure_demo_alerts")
    hook = AlertChannel.objects.get(kind="webhook")
    assert (tmp_path / "demo-webhook.secret").read_text().strip() == hook.secret
    assert AlertChannel.objects.count() == 2
    assert AlertRule.objects.filter(kind="slo_slow_burn").count() == 1
