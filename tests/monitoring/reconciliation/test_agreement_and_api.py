"""Agreement rules across flows that share a business key, and the list of exceptions (page and
GET /api/v1/reconciliation) with each plant's exceptions its own."""

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.models import AgreementRule, ReconciliationException
from monitoring.reconciliation.run import reconcile
from tests.events import event
from tracing.ingest.pipeline import ingest_events

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def send(*events, now=T0 + timedelta(minutes=30)):
    result = ingest_events(list(events), now=now)
    assert not result.rejected, result.rejected


def qh(step, source, target, minutes, lot="L-7", plant="P100", nc="NC-7"):
    return event(
        step,
        flow="quality_hold",
        correlation_id=nc,
        source=source,
        target=target,
        plant=plant,
        at=T0 + timedelta(minutes=minutes),
        business_keys={"lot": lot},
    )


def released_in_qms_only(lot="L-7", plant="P100", nc="NC-7"):
    """Hold applied, propagated everywhere, released in QMS at +10 min; WMS never told."""
    send(
        qh("hold_applied", "QMS", "ERP", 0, lot, plant, nc),
        *(qh("hold_propagated", "MW", t, 1, lot, plant, nc) for t in ("ERP", "MES", "WMS")),
        qh("released", "QMS", "ERP", 10, lot, plant, nc),
    )


def test_a_lot_released_in_qms_and_still_blocked_in_wms_after_15_min(p100):
    released_in_qms_only()
    assert reconcile(T0 + timedelta(minutes=24, seconds=59)).opened == []  # 10 + 15 = 25
    (exception,) = reconcile(T0 + timedelta(minutes=25)).opened
    assert exception.rule == "lot-release-reaches-wms"
    assert exception.kind == "agreement"
    assert exception.since == T0 + timedelta(minutes=10)
    assert exception.missing == ["WMS"]
    assert exception.states == {"QMS": "released", "WMS": "hold_propagated"}
    assert exception.summary == (
        "Lot L-7: released in QMS, WMS still at hold_propagated after 15 min "
        "(A lot released in QMS is not still blocked in WMS)"
    )
    send(qh("released", "MW", "WMS", 31), now=T0 + timedelta(minutes=40))
    (closed,) = reconcile(T0 + timedelta(minutes=41)).closed
    assert closed.id == exception.id
    assert ReconciliationException.objects.get().state == "closed"


def test_a_rule_across_flows_is_met_by_another_transaction_with_the_same_key(p100):
    """Shipped order 4711 without a goods receipt posted in ERP: an exception for 30 min."""

    def flow_event(flow, step, source, target, minutes, correlation):
        return event(
            step, flow=flow, correlation_id=correlation, source=source, target=target,
            at=T0 + timedelta(minutes=minutes), business_keys={"order": "4711"},
        )  # fmt: skip

    send(flow_event("shipment_confirmation", "shipped", "WMS", "ERP", 0, "DLV-1"))
    (exception,) = reconcile(T0 + timedelta(minutes=30)).opened
    assert exception.rule == "shipped-order-has-goods-receipt"
    assert exception.states == {"WMS": "shipped", "ERP": "nothing"}
    send(flow_event("goods_receipt", "posted", "ERP", "WMS", 35, "GR-4711-1"))
    assert [e.id for e in reconcile(T0 + timedelta(minutes=36)).closed] == [exception.id]


def test_a_disabled_rule_and_another_plants_key_do_not_count(p100, p200):
    AgreementRule.objects.exclude(slug="shipped-order-has-goods-receipt").update(enabled=False)

    def shipped(plant, correlation):
        return event(
            "shipped", flow="shipment_confirmation", correlation_id=correlation, source="WMS",
            target="ERP", plant=plant, at=T0, business_keys={"order": "4711"},
        )  # fmt: skip

    send(shipped("P100", "DLV-1"))
    # P200's goods receipt for its own order 4711 does not satisfy P100's shipment.
    send(
        event(
            "posted",
            flow="goods_receipt",
            correlation_id="GR-4711-1",
            source="ERP",
            target="WMS",
            plant="P200",
            at=T0,
            business_keys={"order": "4711"},
        )  # fmt: skip
    )
    opened = reconcile(T0 + timedelta(hours=1)).opened
    assert [(e.plant.code, e.rule) for e in opened] == [("P100", "shipped-order-has-goods-receipt")]


@pytest.fixture
def exceptions(p100, p200):
    released_in_qms_only("L-100", "P100", "NC-100")
    released_in_qms_only("L-200", "P200", "NC-200")
    return reconcile(T0 + timedelta(hours=1)).opened


def test_the_api_lists_a_plants_open_exceptions_with_every_field(exceptions, supervisor_api):
    response = supervisor_api.get("/api/v1/reconciliation", {"plant": "P100", "state": "open"})
    assert response.status_code == 200
    (item,) = response.json()["results"]
    assert {k: item[k] for k in ("rule", "flow", "correlation_id", "missing", "state")} == {
        "rule": "lot-release-reaches-wms",
        "flow": "quality_hold",
        "correlation_id": "NC-100",
        "missing": ["WMS"],
        "state": "open",
    }
    assert item["business_keys"] == {"lot": "L-100"}
    assert item["since"] == (T0 + timedelta(minutes=10)).isoformat()
    assert item["states"] == {"QMS": "released", "WMS": "hold_propagated"}
    assert item["transaction_url"] == "/transactions/quality_hold/NC-100/?plant=P100"


def test_another_plants_supervisor_sees_none_of_p100(exceptions, p200_supervisor_api):
    everything = p200_supervisor_api.get("/api/v1/reconciliation").json()["results"]
    assert [i["correlation_id"] for i in everything] == ["NC-200"]
    response = p200_supervisor_api.get("/api/v1/reconciliation", {"plant": "P100"})
    assert response.status_code == 403
    assert "NC-100" not in response.content.decode()


def test_bad_filters_name_the_field(exceptions, supervisor_api):
    response = supervisor_api.get("/api/v1/reconciliation", {"state": "pending", "plant": "P9"})
    assert response.status_code == 400
    assert response.json() == {
        "state": ["'pending' is not a state; valid: open, closed, all."],
        "plant": ["Unknown plant 'P9'."],
    }


def test_closed_ones_show_with_state_closed_or_all(exceptions, supervisor_api):
    send(qh("released", "MW", "WMS", 70, "L-100", "P100", "NC-100"), now=T0 + timedelta(hours=2))
    reconcile(T0 + timedelta(hours=2))

    def listed(state):
        response = supervisor_api.get("/api/v1/reconciliation", {"state": state})
        return sorted((i["correlation_id"], i["state"]) for i in response.json()["results"])

    assert listed("open") == [("NC-200", "open")]
    assert listed("closed") == [("NC-100", "closed")]
    assert listed("all") == [("NC-100", "closed"), ("NC-200", "open")]


def test_the_page_shows_what_disagrees_with_a_link_to_the_transaction(exceptions, client, bob):
    client.force_login(bob)
    page = client.get("/reconciliation/", {"plant": "P100"}).content.decode()
    assert "Lot L-100: released in QMS, WMS still at hold_propagated after 15 min" in page
    assert 'href="/transactions/quality_hold/NC-100/?plant=P100"' in page
    assert "2026-12-01 09:10 CET" in page  # since, in the plant's zone
    assert "NC-200" not in page
    bad = client.get("/reconciliation/", {"state": "pending"})
    assert bad.status_code == 400
    assert "&#x27;pending&#x27; is not a state" in bad.content.decode()


def test_an_agreement_rule_names_a_milestone_its_flow_does_not_have(db):
    from django.core.exceptions import ValidationError

    rule = AgreementRule.objects.get(slug="lot-release-reaches-wms")
    rule.then_milestone = "unblocked"
    with pytest.raises(ValidationError) as error:
        rule.full_clean()
    assert error.value.message_dict == {
        "then_milestone": [
            "Not a milestone of quality_hold: hold_applied, hold_propagated, released, scrapped."
        ]
    }


def test_admins_add_agreement_rules_by_api_and_bad_ones_name_the_field(admin_api, supervisor_api):
    body = {
        "slug": "gr-reaches-wms",
        "name": "A goods receipt posted in ERP is received in WMS",
        "key": "order",
        "when_flow": "goods_receipt",
        "when_milestone": "posted",
        "when_system": "ERP",
        "then_flow": "goods_receipt",
        "then_milestone": "booked",
        "then_system": "WMS",
        "within_seconds": 600,
    }
    bad = admin_api.post("/api/v1/agreement-rules", body, format="json")
    assert bad.status_code == 400
    assert bad.json() == {
        "then_milestone": ["Not a milestone of goods_receipt: completed, received, posted."]
    }
    assert not AgreementRule.objects.filter(slug="gr-reaches-wms").exists()
    body["then_milestone"] = "received"
    created = admin_api.post("/api/v1/agreement-rules", body, format="json")
    assert created.status_code == 201, created.content
    rule = AgreementRule.objects.get(slug="gr-reaches-wms")
    assert (rule.then_system.code, rule.within.total_seconds()) == ("WMS", 600)
    assert created.json()["within_seconds"] == 600
    listed = supervisor_api.get("/api/v1/agreement-rules").json()
    assert "gr-reaches-wms" in [r["slug"] for r in listed]
    refused = supervisor_api.patch(
        f"/api/v1/agreement-rules/{rule.pk}", {"enabled": False}, format="json"
    )
    assert refused.status_code == 403
    assert AgreementRule.objects.get(pk=rule.pk).enabled


def test_the_plant_overview_counts_open_exceptions_with_a_link(exceptions, client, bob):
    client.force_login(bob)
    html = client.get("/plants/P100/").content.decode()
    assert (
        '<a href="/reconciliation/?plant=P100" class="n-warn"><strong>1</strong> '
        "reconciliation exception</a>" in html
    )


def test_a_pass_reads_only_the_transactions_that_may_break_a_rule(p100, p200):
    """Agreeing, too recent and keyless transactions stay in the database: the work of a pass
    follows the disagreements, not the volume of the lookback."""
    from monitoring.reconciliation.findings import candidates
    from tracing.models import Transaction

    released_in_qms_only("L-1", nc="NC-1")  # WMS never told: a candidate
    released_in_qms_only("L-2", nc="NC-2")
    send(qh("released", "MW", "WMS", 12, "L-2", nc="NC-2"))  # WMS told: agrees
    send(qh("released", "QMS", "ERP", 50, "L-3", nc="NC-3"), now=T0 + timedelta(minutes=51))
    rule = AgreementRule.objects.get(slug="lot-release-reaches-wms")
    at = T0 + timedelta(minutes=30)  # L-3's release is in the future of this pass
    assert [t.correlation_id for t in candidates(rule, at)] == ["NC-1"]

    def shipped(order, plant="P100"):
        return event(
            "shipped", flow="shipment_confirmation", correlation_id=f"DLV-{order}-{plant}",
            source="WMS", target="ERP", plant=plant, at=T0, business_keys={"order": order},
        )  # fmt: skip

    def receipt(order, plant):
        return event(
            "posted", flow="goods_receipt", correlation_id=f"GR-{order}", source="ERP",
            target="WMS", plant=plant, at=T0, business_keys={"order": order},
        )  # fmt: skip

    send(shipped("1"), shipped("2"), shipped("3"), receipt("2", "P100"), receipt("3", "P200"))
    send(event("shipped", flow="shipment_confirmation", correlation_id="DLV-none", source="WMS",
               target="ERP", at=T0, business_keys={"lot": "L-9"}))  # fmt: skip
    rule = AgreementRule.objects.get(slug="shipped-order-has-goods-receipt")
    found = sorted(t.correlation_id for t in candidates(rule, T0 + timedelta(hours=1)))
    assert found == ["DLV-1-P100", "DLV-3-P100"]  # P200's receipt of order 3 is not P100's
    assert Transaction.objects.filter(flow__code="shipment_confirmation").count() == 4
