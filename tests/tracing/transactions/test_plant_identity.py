"""A transaction is (plant, flow, correlation ID): plants never share one, and a reporter of one
plant can never move, complete or read another plant's transaction."""

from datetime import UTC, datetime, timedelta

import pytest

from integration_hub.models import ApiKey
from tests.events import event
from tracing.ingest.pipeline import ingest_events
from tracing.models import TraceEvent, Transaction

pytestmark = pytest.mark.django_db
NOW = datetime.now(UTC).replace(microsecond=0)


def release(plant, corr="PO-4711", *, at=NOW - timedelta(minutes=10), order="4711", **fields):
    return event(
        "released",
        correlation_id=corr,
        plant=plant,
        at=at,
        business_keys={"order": order},
        payload={"plant": plant},
        **fields,
    )


def post(client, key, *events):
    return client.post(
        "/api/v1/events",
        {"events": list(events)},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def test_two_plants_reusing_an_order_number_get_two_transactions(p100, p200):
    ingest_events([release("P100"), release("P200", at=NOW - timedelta(minutes=20))])
    txns = {t.plant.code: t for t in Transaction.objects.select_related("plant")}
    assert set(txns) == {"P100", "P200"}
    assert txns["P100"].event_count == txns["P200"].event_count == 1
    assert TraceEvent.objects.get(transaction=txns["P100"]).payload == {"plant": "P100"}


def test_a_reporter_of_another_plant_cannot_take_over_or_complete_a_transaction(client, p100, p200):
    ingest_events([release("P100")])
    before = Transaction.objects.get(plant=p100)
    _, plant_b_key = ApiKey.issue("P200 reporter", plants=[p200])
    backdated = release("P200", at=NOW - timedelta(days=2))
    completing = event("acknowledged", correlation_id="PO-4711", plant="P200", source="MES", at=NOW)
    response = post(client, plant_b_key, backdated, completing)
    assert response.status_code == 202
    assert response.json()["accepted"] == 2
    after = Transaction.objects.get(pk=before.pk)
    assert (after.plant_id, after.state, after.event_count) == (p100.id, "in_flight", 1)
    assert after.first_seen == before.first_seen
    assert TraceEvent.objects.filter(transaction=after).count() == 1
    theirs = Transaction.objects.get(plant=p200)
    assert (theirs.state, theirs.event_count) == ("completed", 2)


def test_the_api_asks_which_plant_when_the_reader_sees_both(supervisor_api, p100, p200):
    ingest_events([release("P100"), release("P200")])
    url = "/api/v1/transactions/order_release/PO-4711"
    both = supervisor_api.get(url)
    assert both.status_code == 400
    assert "P100, P200" in both.json()["plant"][0]
    one = supervisor_api.get(url, {"plant": "P200"})
    assert one.status_code == 200
    assert one.json()["plant"] == "P200"
    assert [e["payload"] for e in one.json()["events"]] == [{"plant": "P200"}]


def test_a_reader_of_one_plant_gets_that_plants_transaction_and_not_the_other(
    p200_supervisor_api, p100, p200
):
    ingest_events([release("P100"), release("P200")])
    url = "/api/v1/transactions/order_release/PO-4711"
    response = p200_supervisor_api.get(url)
    assert response.status_code == 200
    assert response.json()["plant"] == "P200"
    assert p200_supervisor_api.get(url, {"plant": "P100"}).status_code == 404


def test_the_page_lets_the_reader_choose_the_plant(client, bob, p100, p200):
    ingest_events([release("P100"), release("P200")])
    client.force_login(bob)
    chooser = client.get("/transactions/order_release/PO-4711/")
    assert chooser.status_code == 200
    body = chooser.content.decode()
    assert "/transactions/order_release/PO-4711/?plant=P100" in body
    assert "/transactions/order_release/PO-4711/?plant=P200" in body
    page = client.get("/transactions/order_release/PO-4711/", {"plant": "P200"})
    assert page.status_code == 200
    assert page.context["txn"].plant.code == "P200"


def test_a_journey_stays_in_its_plant(supervisor_api, p100, p200):
    confirmation = {"flow": "production_confirmation", "source": "MES", "target": "ERP"}
    ingest_events(
        [
            release("P100"),
            release("P200"),
            event(
                "confirmed",
                correlation_id="CONF-1",
                plant="P200",
                business_keys={"order": "4711"},
                **confirmation,
            ),
        ]  # fmt: skip
    )
    mine = supervisor_api.get("/api/v1/transactions/order_release/PO-4711", {"plant": "P100"})
    theirs = supervisor_api.get("/api/v1/transactions/order_release/PO-4711", {"plant": "P200"})
    assert mine.json()["related"] == []
    assert [r["correlation_id"] for r in theirs.json()["related"]] == ["CONF-1"]
