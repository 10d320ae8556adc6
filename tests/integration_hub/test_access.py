"""People see only their plants' data, in pages and API alike."""

from datetime import UTC, datetime

import pytest

from integration_hub.roles import can_triage
from monitoring.slo.evaluation import run_evaluation
from tests.events import sample_events
from tracing.ingest.pipeline import ingest_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(p100, p200):
    now = datetime.now(UTC)
    ingest_events(sample_events(now), now=now)
    run_evaluation()


def test_another_plants_transactions_are_not_listed(p200_supervisor_api, loaded):
    results = p200_supervisor_api.get("/api/v1/transactions").json()["results"]
    assert {r["plant"] for r in results} == {"P200"}
    assert (
        p200_supervisor_api.get("/api/v1/transactions", {"plant": "P100"}).json()["results"] == []
    )


def test_another_plants_transaction_is_404_not_its_data(p200_supervisor_api, loaded):
    response = p200_supervisor_api.get("/api/v1/transactions/order_release/PO-1000123")
    assert response.status_code == 404
    assert b"1000123" not in response.content
    assert (
        p200_supervisor_api.get("/api/v1/transactions/inventory_movement/TO-551300").status_code
        == 200
    )


def test_journey_leaves_out_other_plants(p200_supervisor_api, loaded):
    body = p200_supervisor_api.get("/api/v1/transactions/shipment_confirmation/DLV-80011234").json()
    assert all(r["flow"] != "order_release" for r in body["related"])


def test_slo_list_shows_only_own_plants_and_no_overall(p200_supervisor_api, supervisor_api, loaded):
    plants = {i["plant"] for i in p200_supervisor_api.get("/api/v1/slos").json()}
    assert plants == {"P200"}
    assert None in {i["plant"] for i in supervisor_api.get("/api/v1/slos").json()}


def test_slo_detail_for_another_plant_is_refused(p200_supervisor_api, loaded):
    response = p200_supervisor_api.get("/api/v1/slos/1", {"plant": "P100"})
    assert response.status_code == 400
    assert "plant" in response.json()


def test_transaction_page_of_another_plant_is_404(client, carol, loaded):
    client.force_login(carol)
    assert client.get("/transactions/order_release/PO-1000123/").status_code == 404
    page = client.get("/transactions/", {"q": "1000123"})
    assert b"/transactions/order_release/PO-1000123/" not in page.content


def test_a_user_without_plants_sees_nothing(client, django_user_model, loaded):
    nobody = django_user_model.objects.create_user("eve", password="x")
    client.force_login(nobody)
    assert b"/transactions/order_release/PO-1000123/" not in client.get("/transactions/").content


def test_roles(alice, bob, dave):
    assert can_triage(alice)
    assert can_triage(dave)
    assert not can_triage(bob)


def test_the_admin_role_holds_the_permissions_of_models_added_after_the_roles(
    django_user_model,
):
    from django.contrib.auth.models import Group, Permission

    admin = django_user_model.objects.create_user("erin", password="erin-pw")
    admin.groups.add(Group.objects.get(name="admin"))
    assert admin.has_perm("monitoring.change_hourrollup")  # monitoring 0004, after the roles
    assert admin.has_perm("monitoring.add_alertrule")
    assert Group.objects.get(name="admin").permissions.count() == Permission.objects.count()
    supervisor = Group.objects.get(name="supervisor")
    assert not supervisor.permissions.filter(codename="change_hourrollup").exists()
