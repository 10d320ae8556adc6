"""How long a plant's data is kept: the settings' days per kind, and the plant's own, set by
admins through the plants API or the admin site."""

import pytest

from integration_hub.models import RetentionOverride
from integration_hub.retention import days_for

pytestmark = pytest.mark.django_db


def test_a_plant_shows_the_days_each_kind_is_kept(admin_api, p100):
    body = admin_api.get("/api/v1/plants/P100").json()
    assert body["retention_overrides"] == {}
    assert body["retention"]["events"] == 90 and body["retention"]["transactions"] == 400


def test_admins_set_and_clear_a_plants_own_retention_by_api(admin_api, p100):
    response = admin_api.patch(
        "/api/v1/plants/P100", {"retention_overrides": {"events": 30, "hour_rollups": 0}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    assert response.json()["retention"]["events"] == 30
    assert dict(RetentionOverride.objects.values_list("kind", "days")) == {
        "events": 30,
        "hour_rollups": 0,
    }
    assert days_for("events", p100) == 30 and days_for("payloads", p100) == 30
    admin_api.patch("/api/v1/plants/P100", {"retention_overrides": {"events": None}}, format="json")
    assert dict(RetentionOverride.objects.values_list("kind", "days")) == {"hour_rollups": 0}
    assert days_for("events", p100) == 90


def test_a_new_plant_can_come_with_its_retention(admin_api):
    created = admin_api.post(
        "/api/v1/plants",
        {"code": "P300", "name": "Plant 300", "retention_overrides": {"dead_letters": 365}},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert RetentionOverride.objects.get(plant__code="P300").days == 365


@pytest.mark.parametrize(
    "overrides",
    [{"raw_events": 10}, {"events": -1}, {"events": "ten"}, {"events": 2.5}, {"events": True},
     ["events"], {"events": 10**9}],
)  # fmt: skip
def test_bad_retention_is_a_400_naming_the_field(admin_api, p100, overrides):
    response = admin_api.patch(
        "/api/v1/plants/P100", {"retention_overrides": overrides}, format="json"
    )
    assert response.status_code == 400 and "retention_overrides" in response.json()
    assert not RetentionOverride.objects.exists()


def test_supervisors_cannot_change_retention(supervisor_api, p100):
    response = supervisor_api.patch(
        "/api/v1/plants/P100", {"retention_overrides": {"events": 1}}, format="json"
    )
    assert response.status_code == 403
    assert not RetentionOverride.objects.exists()


def test_admins_set_a_plants_retention_in_the_admin(client, alice, p100):
    client.force_login(alice)
    form = {
        "code": "P100", "name": p100.name, "timezone": p100.timezone,
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "shifts-TOTAL_FORMS": "0", "shifts-INITIAL_FORMS": "0",
        "downtimes-TOTAL_FORMS": "0", "downtimes-INITIAL_FORMS": "0",
        "retention_overrides-TOTAL_FORMS": "1", "retention_overrides-INITIAL_FORMS": "0",
        "retention_overrides-0-kind": "transactions", "retention_overrides-0-days": "800",
    }  # fmt: skip
    response = client.post(f"/admin/integration_hub/plant/{p100.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert days_for("transactions", p100) == 800
