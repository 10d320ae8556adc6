"""Alerts end to end against real receivers: a local SMTP server and a local webhook endpoint.

Evaluation and sending run in the test process (`evaluate_alerts(now)`, `deliver(id, now)`), with
a clock passed in; the receivers get what a production receiver would get.
"""

from datetime import UTC, datetime, timedelta

import pytest

from integration_hub.models import Flow, System
from monitoring.alerts import conditions
from monitoring.alerts.channels.webhook import new_secret
from monitoring.alerts.delivery import claim, create_deliveries, deliver, requeue_deliveries
from monitoring.alerts.lifecycle import evaluate_alerts
from monitoring.models import (
    SLO,
    Alert,
    AlertChannel,
    AlertRule,
    AlertTransition,
    Delivery,
    SLOStatus,
)
from tests.events import event
from tests.monitoring.alerts.conftest import (
    MIN,
    NOW,
    dead_letter,
    email_channel,
    send_all,
    stuck_release,
    stuck_rule,
    webhook_channel,
)
from tests.receivers.alerts import SMTPReceiver, WebhookReceiver, verify_standard_webhook
from tracing.ingest.pipeline import ingest_events
from tracing.models import DeadLetter

# Deliveries are driven by the test (deliver()); what would go to the broker is recorded.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]


def acknowledge(corr="PO-9", plant="P100", at=NOW):
    ingest_events(
        [event("acknowledged", correlation_id=corr, plant=plant, source="MES", at=at)], now=at
    )


def transitions():
    return list(AlertTransition.objects.values_list("kind", flat=True))


# --- Fire, repeat, resolve --------------------------------------------------------------------


def test_stuck_transactions_fire_one_email_and_one_signed_webhook(smtp, hook, p100):
    """Both channels get one notice with plant, what is wrong, since when, figure vs threshold,
    and a link to the plant's dashboard filtered to the flow."""
    stuck_rule(plant=p100)
    email_channel()
    webhook_channel(hook)
    stuck_release()

    result = evaluate_alerts(NOW)
    assert result["fired"] == 1 and result["deliveries"] == 2
    assert send_all(NOW) == ["sent", "sent"]

    [mail] = smtp.messages
    assert mail["to"] == ["support-p100@example.com"]
    assert "FIRING" in mail["message"]["Subject"] and "P100" in mail["message"]["Subject"]
    text, html = SMTPReceiver.text_and_html(mail["message"])
    for part in (text, html):
        assert "1 stuck order_release transactions at P100" in part
        assert "http://127.0.0.1:8000/plants/P100/?flow=order_release" in part
        assert "Since" in part and "2026-11-23 10:30:00 UTC" in part  # stuck after 30 min
    assert "Now:       1 stuck transactions" in text and "Threshold: 0" in text

    [request] = hook.requests
    assert request["verified"]
    body = request["json"]
    alert = Alert.objects.get()
    assert body["alert_id"] == alert.id and body["transition"] == "fired"
    assert body["state"] == "firing" and body["severity"] == "critical"
    assert body["plant"] == "P100" and body["flow"] == "order_release"
    assert body["figures"]["value"] == 1 and body["figures"]["threshold"] == 0
    assert body["rule"]["name"] == "Order releases stuck"
    assert body["links"]["dashboard"] == "http://127.0.0.1:8000/plants/P100/?flow=order_release"
    assert body["fired_at"] == NOW.isoformat()

    evaluate_alerts(NOW + MIN)
    assert transitions() == ["fired"]
    assert Delivery.objects.count() == 2


def test_repeats_only_after_the_repeat_interval(hook, p100):
    stuck_rule(plant=p100, repeat_interval_seconds=3600)
    webhook_channel(hook)
    stuck_release()
    for minutes in (0, 1, 30, 59):
        evaluate_alerts(NOW + minutes * MIN)
    assert transitions() == ["fired"]
    evaluate_alerts(NOW + 60 * MIN)
    evaluate_alerts(NOW + 61 * MIN)
    assert transitions() == ["fired", "repeat"]
    send_all(NOW + 61 * MIN)
    assert [r["json"]["transition"] for r in hook.requests] == ["fired", "repeat"]
    assert hook.requests[1]["json"]["repeat"] == 1


def test_resolves_once_after_the_hold_down(smtp, p100):
    stuck_rule(plant=p100, resolve_after_seconds=300)
    email_channel()
    stuck_release()
    evaluate_alerts(NOW)
    acknowledge(at=NOW + MIN)

    evaluate_alerts(NOW + 2 * MIN)  # clear, holding down
    assert Alert.objects.get().state == "firing"
    evaluate_alerts(NOW + 6 * MIN)
    assert Alert.objects.get().state == "firing"
    evaluate_alerts(NOW + 7 * MIN)
    evaluate_alerts(NOW + 8 * MIN)
    alert = Alert.objects.get()
    assert alert.state == "resolved" and alert.resolved_at == NOW + 7 * MIN
    assert transitions() == ["fired", "resolved"]
    send_all(NOW + 8 * MIN)
    assert ["FIRING" in m["message"]["Subject"] for m in smtp.messages] == [True, False]
    assert "RESOLVED" in smtp.messages[1]["message"]["Subject"]


def test_a_flapping_condition_sends_one_notice_not_a_storm(hook, p100):
    """Open dead letters above 0, cleared and reopened every minute for 20 minutes."""
    AlertRule.objects.create(
        name="Open dead letters", kind="dead_letters_open", threshold_count=0, plant=p100
    )
    webhook_channel(hook)
    letter = dead_letter(1, plant=p100)
    for minute in range(20):
        state = "new" if minute % 2 == 0 else "resolved"
        DeadLetter.objects.filter(pk=letter.pk).update(state=state)
        evaluate_alerts(NOW + minute * MIN)
    assert Alert.objects.count() == 1
    assert transitions() == ["fired"]
    DeadLetter.objects.filter(pk=letter.pk).update(state="resolved")
    for minute in range(20, 27):
        evaluate_alerts(NOW + minute * MIN)
    assert transitions() == ["fired", "resolved"]
    send_all(NOW + 27 * MIN)
    assert len(hook.requests) == 2


def test_a_muted_rule_records_but_sends_nothing_until_the_mute_ends(hook, p100):
    rule = stuck_rule(
        plant=p100, muted_until=NOW + 30 * MIN, mute_reason="MES upgrade, planned downtime"
    )
    webhook_channel(hook)
    stuck_release()
    evaluate_alerts(NOW)
    evaluate_alerts(NOW + 10 * MIN)
    assert Alert.objects.get().state == "firing"
    assert transitions() == [] and Delivery.objects.count() == 0

    evaluate_alerts(NOW + 31 * MIN)
    assert transitions() == ["fired"]
    rule.muted_until = NOW + 24 * 60 * MIN
    rule.save()
    acknowledge(at=NOW + 32 * MIN)
    evaluate_alerts(NOW + 33 * MIN)
    evaluate_alerts(NOW + 40 * MIN)
    # Announced before the mute: the receiver still hears that it is over.
    assert transitions() == ["fired", "resolved"]


def test_an_alert_that_resolves_during_a_mute_is_never_sent(hook, p100):
    stuck_rule(plant=p100, muted_until=NOW + 60 * MIN, mute_reason="maintenance")
    webhook_channel(hook)
    stuck_release()
    evaluate_alerts(NOW)
    acknowledge(at=NOW + MIN)
    evaluate_alerts(NOW + 2 * MIN)
    evaluate_alerts(NOW + 10 * MIN)
    assert Alert.objects.get().state == "resolved"
    assert transitions() == [] and Delivery.objects.count() == 0


# --- Routing ------------------------------------------------------------------------------------


def test_channels_get_only_their_plants_flows_and_severities(hook, p100, p200):
    """A warning about P100 order releases reaches the P100 and order-release channels only."""
    stuck_rule(severity="warning")  # every plant, each on its own
    order_release = Flow.objects.get(code="order_release")
    shipment = Flow.objects.get(code="shipment_confirmation")
    everything = email_channel(name="everything", min_severity="info")
    p100_only = email_channel(name="P100 only", plants=[p100])
    p200_only = email_channel(name="P200 only", plants=[p200])
    releases = email_channel(name="order releases", flows=[order_release])
    shipments = email_channel(name="shipments", flows=[shipment])
    critical = email_channel(name="critical only", min_severity="critical")
    stuck_release(plant="P100")

    evaluate_alerts(NOW)
    routed = set(Delivery.objects.values_list("channel__name", flat=True))
    assert routed == {everything.name, p100_only.name, releases.name}
    assert not {p200_only.name, shipments.name, critical.name} & routed


def test_each_plant_is_its_own_alert(p100, p200):
    stuck_rule()
    stuck_release("PO-1", plant="P100")
    stuck_release("PO-2", plant="P200")
    evaluate_alerts(NOW)
    assert set(Alert.objects.values_list("plant__code", flat=True)) == {"P100", "P200"}


# --- Webhook delivery ---------------------------------------------------------------------------


def test_a_500_is_retried_with_backoff_and_recorded_on_one_delivery(enqueued, p100):
    hook = WebhookReceiver(responses=[500]).start()
    try:
        stuck_rule(plant=p100)
        webhook_channel(hook)
        stuck_release()
        evaluate_alerts(NOW)
        delivery = Delivery.objects.get()

        assert deliver(delivery.id, NOW) == "pending"
        delivery.refresh_from_db()
        assert delivery.attempts == 1 and delivery.last_error.startswith("HTTP 500")
        assert delivery.next_attempt_at == NOW + timedelta(seconds=10)
        assert enqueued == [[delivery.id]]  # handed back with a countdown

        assert deliver(delivery.id, NOW + timedelta(seconds=10)) == "sent"
        delivery.refresh_from_db()
        assert (delivery.state, delivery.attempts, delivery.response_status) == ("sent", 2, 200)
        assert delivery.last_error == ""
        assert Delivery.objects.count() == 1
        first, second = hook.requests
        assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
        assert first["headers"]["webhook-id"] == delivery.message_id
        assert first["verified"] and second["verified"]
        assert deliver(delivery.id, NOW + MIN) is None  # sent: nothing to claim
        assert len(hook.requests) == 2
    finally:
        hook.stop()


def test_a_4xx_fails_at_once_and_retries_stop_at_max_attempts(p100):
    hook = WebhookReceiver(responses=[410, 503, 503]).start()
    try:
        stuck_rule(plant=p100)
        gone = webhook_channel(hook, name="gone")
        stuck_release()
        evaluate_alerts(NOW)
        assert deliver(Delivery.objects.get(channel=gone).id, NOW) == "failed"
        flaky = webhook_channel(hook, name="flaky", max_attempts=2)
        delivery = Delivery.objects.create(
            channel=flaky,
            message_id="msg_flaky",
            payload={"x": 1},
            next_attempt_at=NOW,
            created_at=NOW,
        )
        assert deliver(delivery.id, NOW) == "pending"
        assert deliver(delivery.id, NOW + MIN) == "failed"
        delivery.refresh_from_db()
        assert delivery.attempts == 2 and "503" in delivery.last_error
    finally:
        hook.stop()


def test_a_timeout_is_retried(p100):
    hook = WebhookReceiver(stall_first=True).start()
    try:
        stuck_rule(plant=p100)
        webhook_channel(hook, timeout_seconds=1)
        stuck_release()
        evaluate_alerts(NOW)
        delivery = Delivery.objects.get()
        assert deliver(delivery.id, NOW) == "pending"
        delivery.refresh_from_db()
        assert "timed out" in delivery.last_error
        hook.release()
        assert deliver(delivery.id, NOW + MIN) == "sent"
    finally:
        hook.stop()


def test_the_signature_follows_standard_webhooks_and_survives_rotation(hook, p100):
    stuck_rule(plant=p100)
    channel = webhook_channel(hook)
    old = channel.secret
    stuck_release()
    evaluate_alerts(NOW)
    send_all(NOW)
    [request] = hook.requests
    headers = request["headers"]
    assert headers["webhook-signature"].startswith("v1,")
    assert int(headers["webhook-timestamp"]) > 0
    assert verify_standard_webhook(old, headers, request["body"])
    assert not verify_standard_webhook(new_secret(), headers, request["body"])
    tampered = request["body"].replace(b"P100", b"P200")
    assert not verify_standard_webhook(old, headers, tampered)

    # Rotation: during the overlap both secrets sign, so receivers switch without a gap.
    from monitoring.alerts.api.views import rotate_secret

    new = rotate_secret(channel, now=datetime.now(UTC))
    from monitoring.alerts.delivery import queue_test_delivery

    test = queue_test_delivery(AlertChannel.objects.get(pk=channel.pk))
    deliver(test.id)
    request = hook.requests[-1]
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    assert verify_standard_webhook(old, request["headers"], request["body"])
    assert verify_standard_webhook(new, request["headers"], request["body"])
    assert request["json"]["type"] == "alert.test"


def test_slack_and_teams_presets_shape_the_body(hook, p100):
    stuck_rule(plant=p100)
    webhook_channel(hook, name="slack", preset="slack")
    webhook_channel(hook, name="teams", preset="teams")
    stuck_release()
    evaluate_alerts(NOW)
    send_all(NOW)
    bodies = {r["json"].get("type", "slack"): r["json"] for r in hook.requests}
    assert "[CRITICAL] FIRING (P100 · order_release)" in bodies["slack"]["text"]
    card = bodies["message"]["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"


def test_reporter_text_cannot_inject_markup_into_slack_or_teams(hook, p100):
    AlertRule.objects.create(name="New failure cause", kind="dead_letter_new_group")
    webhook_channel(hook, name="slack", preset="slack")
    webhook_channel(hook, name="teams", preset="teams")
    letter = dead_letter(1, plant=p100, fingerprint="fp-evil", at=NOW - MIN)
    DeadLetter.objects.filter(pk=letter.pk).update(
        error_code="<!channel>",
        error_message="[click](https://evil.example) <https://evil.example|here>",
    )
    evaluate_alerts(NOW)
    assert "<!channel>" in Alert.objects.get().summary  # the hub's own document keeps it as is
    send_all(NOW)
    bodies = {r["json"].get("type", "slack"): r["json"] for r in hook.requests}
    slack = bodies["slack"]["text"]
    assert "<!channel>" not in slack and "&lt;!channel&gt;" in slack
    assert "<https://evil.example" not in slack
    card = bodies["message"]["attachments"][0]["content"]
    title = card["body"][0]["text"]
    assert "<!channel>" not in title and "\\<\\!channel\\>" in title
    assert all("[click](" not in block.get("text", "") for block in card["body"])


def test_an_expired_lease_is_handed_back_and_a_lost_message_requeued(enqueued, hook, p100):
    stuck_rule(plant=p100)
    webhook_channel(hook)
    stuck_release()
    evaluate_alerts(NOW)
    delivery = Delivery.objects.get()
    assert claim(delivery.id, NOW)  # a worker took it, then died
    assert requeue_deliveries(NOW + 30 * timedelta(seconds=1)) == []
    assert requeue_deliveries(NOW + MIN) == [delivery.id]
    assert deliver(delivery.id, NOW + MIN) == "sent"
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert requeue_deliveries(NOW + 10 * MIN) == []


def test_a_transition_is_never_queued_twice_for_a_channel(hook, p100):
    stuck_rule(plant=p100)
    webhook_channel(hook)
    stuck_release()
    evaluate_alerts(NOW)
    transition = AlertTransition.objects.get()
    assert create_deliveries([transition], NOW) == []
    assert Delivery.objects.count() == 1


# --- Rule kinds ---------------------------------------------------------------------------------


def test_silence_fires_when_a_system_stops_and_resolves_when_it_resumes(hook, p100):
    mes = System.objects.get(code="MES")
    AlertRule.objects.create(
        name="MES quiet", kind="silence", system=mes, plant=p100, threshold_seconds=600
    )
    webhook_channel(hook)
    t0 = NOW - timedelta(hours=1)
    ingest_events([event("received", source="MES", correlation_id="PO-1", at=t0)], now=t0)
    ingest_events(  # ERP keeps talking: it is MES that went quiet
        [event("released", correlation_id="PO-2", at=t0 + 15 * MIN)], now=t0 + 15 * MIN
    )
    evaluate_alerts(t0 + 5 * MIN)
    assert Alert.objects.count() == 0
    evaluate_alerts(t0 + 11 * MIN)
    alert = Alert.objects.get()
    assert alert.state == "firing" and alert.since == t0 and alert.system == mes
    assert alert.summary == "MES sent no event at P100 for 11 min"

    evaluate_alerts(t0 + 40 * MIN)  # still quiet, past the window: since stays known
    alert.refresh_from_db()
    assert alert.since == t0 and alert.figures["value"] == 40 * 60

    at = t0 + 45 * MIN
    ingest_events([event("received", source="MES", correlation_id="PO-3", at=at)], now=at)
    evaluate_alerts(at)
    evaluate_alerts(at + 6 * MIN)
    alert.refresh_from_db()
    assert alert.state == "resolved"
    send_all(at + 6 * MIN)
    assert [r["json"]["transition"] for r in hook.requests] == ["fired", "resolved"]
    assert hook.requests[0]["json"]["system"] == "MES"


def test_silence_rules_read_the_latest_event_in_one_query(django_assert_num_queries, p100):
    for code in ("ERP", "MES", "WMS", "QMS"):
        AlertRule.objects.create(
            name=f"{code} quiet",
            kind="silence",
            system=System.objects.get(code=code),
            threshold_seconds=600,
        )
    ingest_events([event("released", correlation_id="PO-1", at=NOW - MIN)], now=NOW - MIN)
    rules = list(AlertRule.objects.all())
    ctx = conditions.Context({})
    with django_assert_num_queries(1):  # ERP talked; the others are looked up only when silent
        found = conditions.silence_conditions(rules[:1], NOW, ctx)
    assert found[rules[0].id] == []
    with django_assert_num_queries(4):  # one aggregate, then the three silent systems
        found = conditions.silence_conditions(rules, NOW, ctx)
    assert sum(len(c) for c in found.values()) == 3


def test_new_dead_letter_group_fires_once_and_resolves_when_closed(p100):
    AlertRule.objects.create(name="New failure cause", kind="dead_letter_new_group")
    old = dead_letter(1, plant=p100, fingerprint="fp-old", at=NOW - timedelta(days=2))
    evaluate_alerts(NOW)
    assert Alert.objects.count() == 0  # an old group is not news
    letters = [dead_letter(n, plant=p100, fingerprint="fp-new", at=NOW - MIN) for n in range(3)]
    evaluate_alerts(NOW)
    alert = Alert.objects.get()
    assert alert.subject == "fp-new" and alert.figures["value"] == 3
    assert "order_release → MES, master_data M404" in alert.summary
    evaluate_alerts(NOW + 2 * 60 * MIN)  # older than the window but still open: still firing
    assert Alert.objects.get().state == "firing"
    DeadLetter.objects.filter(pk__in=[x.pk for x in letters]).update(state="discarded")
    evaluate_alerts(NOW + 121 * MIN)
    evaluate_alerts(NOW + 127 * MIN)
    assert Alert.objects.get().state == "resolved"
    assert old.state == "new"


def test_dead_letter_group_growth_above_n_in_t(p100):
    AlertRule.objects.create(
        name="Group growing",
        kind="dead_letter_growth",
        threshold_count=3,
        threshold_seconds=600,
    )
    for n in range(3):
        dead_letter(n, plant=p100, at=NOW - 5 * MIN)
    evaluate_alerts(NOW)
    assert Alert.objects.count() == 0
    dead_letter(9, plant=p100, at=NOW - MIN)
    evaluate_alerts(NOW)
    alert = Alert.objects.get()
    assert alert.figures["value"] == 4 and alert.figures["threshold"] == 3


def test_stuck_oldest_older_than_t(p100):
    stuck_rule(plant=p100, threshold_count=5, threshold_seconds=3 * 3600)
    stuck_release(at=NOW - timedelta(hours=2))
    evaluate_alerts(NOW)
    assert Alert.objects.count() == 0  # one stuck (not above 5), 2 h old (not over 3 h)
    evaluate_alerts(NOW + 61 * MIN)
    alert = Alert.objects.get()
    assert alert.figures["unit"] == "seconds (oldest)" and alert.figures["value"] > 3 * 3600


def slo_status(slo, plant, rates):
    return SLOStatus.objects.create(
        slo=slo, plant=plant, burn_rates=rates, status="breaching", evaluated_at=NOW
    )


def test_slo_burn_pages_on_fast_burn_and_tickets_on_slow_burn(p100, p200):
    slo = SLO.objects.get(slug="order-release-latency")
    fast = AlertRule.objects.create(name="Page", kind="slo_fast_burn", severity="critical")
    slow = AlertRule.objects.create(
        name="Ticket", kind="slo_slow_burn", severity="warning", slo=slo
    )
    calm = {"5m": 0.0, "30m": 0.0, "1h": 0.0, "6h": 0.0, "3d": 0.0}
    slo_status(slo, p100, {"5m": 20.0, "30m": 8.0, "1h": 15.0, "6h": 7.0, "3d": 2.0})
    slo_status(slo, p200, {**calm, "6h": 1.5, "3d": 1.2})
    evaluate_alerts(NOW)
    fired = {(a.rule_id, a.plant.code) for a in Alert.objects.all()}
    assert fired == {(fast.id, "P100"), (slow.id, "P100"), (slow.id, "P200")}
    page = Alert.objects.get(rule=fast)
    assert page.figures["value"] == 15.0 and page.figures["threshold"] == 14.4
    assert page.subject == slo.slug and page.flow.code == "order_release"


def test_a_disabled_rule_resolves_its_alerts(p100):
    rule = stuck_rule(plant=p100)
    stuck_release()
    evaluate_alerts(NOW)
    rule.enabled = False
    rule.save()
    evaluate_alerts(NOW + MIN)
    assert Alert.objects.get().state == "resolved"
