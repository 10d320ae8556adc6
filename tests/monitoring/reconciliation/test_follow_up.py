"""What follows a reconciliation exception: its owner is assigned and emailed, an alert rule of
its own fires with a link to the list, the shift digest lists it, and the default SLO counts
how long it stayed open."""

from datetime import UTC, datetime, timedelta

import pytest

from integration_hub.models import Shift, System
from monitoring.alerts.digest import send_shift_digests
from monitoring.alerts.lifecycle import evaluate_alerts
from monitoring.models import SLO, Alert, AlertChannel, AlertRule, Outcome, OwnerRule
from monitoring.reconciliation.run import reconcile
from monitoring.slo import outcomes
from monitoring.triage.owners import assign_owners
from tests.conftest import person
from tests.events import event
from tracing.ingest.pipeline import ingest_events

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 10:00 in Stuttgart


def hold_without_wms(nc="NC-9", lot="L-9"):
    def hop(step, source, target, seconds):
        return event(
            step, flow="quality_hold", correlation_id=nc, source=source, target=target,
            at=T0 + timedelta(seconds=seconds), business_keys={"lot": lot},
        )  # fmt: skip

    result = ingest_events(
        [
            hop("hold_applied", "QMS", "ERP", 0),
            hop("hold_propagated", "MW", "ERP", 20),
            hop("hold_propagated", "MW", "MES", 40),
        ],
        now=T0 + timedelta(minutes=1),
    )
    assert not result.rejected
    (exception,) = reconcile(T0 + timedelta(minutes=16)).opened
    return exception


@pytest.fixture
def wms_owner(django_user_model, p100):
    """Walt, P100's warehouse integration analyst."""
    user = person(django_user_model, "walt", "analyst", [p100])
    user.email = "walt@plant.example"
    user.save()
    return user


def test_owner_rules_assign_exceptions_by_missing_system_and_email_the_owner(
    p100, wms_owner, dave, smtp
):
    wms = System.objects.get(code="WMS")
    OwnerRule.objects.create(name="P100 support", plant=p100, owner=dave)
    OwnerRule.objects.create(
        name="P100 WMS gaps", plant=p100, error_class="reconciliation", target=wms,
        owner=wms_owner,
    )  # fmt: skip
    OwnerRule.objects.create(
        name="P100 master data", plant=p100, error_class="master_data", owner=dave
    )
    exception = hold_without_wms()
    given = assign_owners(T0 + timedelta(minutes=16, seconds=1))
    assert given == {"exceptions": {"walt": [exception.id]}}
    exception.refresh_from_db()
    assert exception.assignee == wms_owner
    [mail] = smtp.messages
    assert mail["to"] == ["walt@plant.example"]
    body = mail["message"].get_content()
    assert mail["message"]["Subject"] == "[hub] 1 new reconciliation exception for you"
    assert (
        "P100: Quality hold for lot L-9 from QMS: hold_propagated reached ERP and MES, never WMS"
        in body
    )
    assert "/reconciliation/?plant=P100&flow=quality_hold&state=open" in body


def test_an_alert_rule_fires_on_open_exceptions_and_links_to_them(p100):
    rule = AlertRule.objects.create(
        name="Systems disagree", kind="reconciliation", plant=p100, threshold_count=0
    )
    hold_without_wms()
    evaluate_alerts(T0 + timedelta(minutes=17))
    alert = Alert.objects.get(rule=rule)
    assert alert.summary == "1 open reconciliation exceptions at P100"
    assert alert.since == T0 + timedelta(seconds=20)
    from monitoring.alerts.channels.links import cause

    assert cause(alert) == (
        "Open the reconciliation exceptions",
        "http://127.0.0.1:8000/reconciliation/?plant=P100&state=open",
    )


def test_the_shift_digest_lists_open_exceptions(p100, smtp):
    Shift.objects.create(plant=p100, name="Early", days=[0], start="06:00", end="14:00")
    channel = AlertChannel.objects.create(
        name="P100 support", kind="email", recipients=["p100@plant.example"]
    )
    channel.plants.set([p100])
    exception = hold_without_wms()
    ends = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # 14:00 in Stuttgart
    assert send_shift_digests(ends + timedelta(seconds=30)) == [
        ("P100", "Early", ["p100@plant.example"])
    ]
    body = smtp.messages[0]["message"].get_content()
    assert "- 1 reconciliation exception (systems that disagree)" in body
    assert (
        "    since 10:00: Quality hold for lot L-9 from QMS: hold_propagated reached ERP and MES, "
        "never WMS" in body
    )
    assert f"http://127.0.0.1:8000{exception.get_absolute_url()}" in body
    assert "- 1 reconciliation exception opened, 0 closed" in body


def test_the_default_slo_counts_how_long_an_exception_stayed_open(p100):
    slo = SLO.objects.get(slug="reconciliation-exceptions")
    assert (slo.kind, slo.subject, slo.threshold_seconds) == ("age", "reconciliation", 3600)
    exception = hold_without_wms()
    outcomes.refresh(T0 + timedelta(minutes=20))
    outcome = Outcome.objects.get(slo=slo, exception=exception)
    # Open since +20 s (ERP got the hold): pending until +1 h 0 min 20 s.
    assert (outcome.pending, outcome.at) == (True, T0 + timedelta(hours=1, seconds=20))
    ingest_events(
        [
            event(
                "hold_propagated",
                flow="quality_hold",
                correlation_id="NC-9",
                source="MW",
                target="WMS",
                at=T0 + timedelta(minutes=50),
                business_keys={"lot": "L-9"},
            )  # fmt: skip
        ],
        now=T0 + timedelta(minutes=51),
    )
    reconcile(T0 + timedelta(minutes=52))
    outcomes.refresh(T0 + timedelta(minutes=53))
    outcome.refresh_from_db()
    # Closed at +52 min, open 51 min 40 s: good.
    assert (outcome.pending, outcome.good, outcome.latency) == (False, True, 52 * 60 - 20)


def test_the_slo_page_lists_a_late_exception_among_the_worst(p100, client, alice):
    hold_without_wms()
    outcomes.refresh(T0 + timedelta(hours=2))  # still open past the hour: counted bad
    client.force_login(alice)
    window = {"range": "custom", "from": "2026-11-23T08:00", "to": "2026-11-23T14:00"}
    page = client.get("/plants/P100/slos/reconciliation-exceptions/", window)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Systems in agreement" in html
    assert "reconciliation · missing WMS" in html
