"""People, plant roles and reporter keys by API, for automation: admins only; bad input named."""

import pytest
from django.contrib.auth import get_user_model

from integration_hub.models import ApiKey, PlantMembership
from integration_hub.roles import can_triage

pytestmark = pytest.mark.django_db


def test_an_admin_creates_a_person_who_can_then_sign_in(admin_api, client):
    response = admin_api.post(
        "/api/v1/users",
        {"username": "frank", "email": "frank@plant.example", "password": "Long-enough-9"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json() == {"username": "frank", "email": "frank@plant.example",
                               "role": None, "plants": [], "is_active": True}  # fmt: skip
    assert client.login(username="frank", password="Long-enough-9")
    listed = admin_api.get("/api/v1/users").json()["results"]
    assert "frank" in [u["username"] for u in listed]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"username": "frank", "password": "short"}, "password"),
        ({"username": "alice", "password": "Long-enough-9"}, "username"),
        ({"username": "a b/c", "password": "Long-enough-9"}, "username"),
        ({"username": "frank", "email": "not-an-address", "password": "Long-enough-9"}, "email"),
        ({"username": "frank"}, "password"),
    ],
)
def test_a_bad_person_is_refused_by_field(admin_api, body, field):
    response = admin_api.post("/api/v1/users", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not get_user_model().objects.filter(username="frank").exists()


def test_membership_and_role_by_plant(admin_api, django_user_model, p100, p200):
    frank = django_user_model.objects.create_user("frank", password="x")
    url = "/api/v1/plants/P100/members/frank"
    first = admin_api.put(url, {"role": "analyst"}, format="json")
    assert (first.status_code, first.json()["role"]) == (201, "analyst")
    assert admin_api.put(url, {"role": "analyst"}, format="json").status_code == 200
    assert PlantMembership.objects.filter(user=frank, plant=p100).exists()
    assert can_triage(get_user_model().objects.get(pk=frank.pk))
    members = admin_api.get("/api/v1/plants/P100/members").json()["results"]
    assert {"username": "frank", "role": "analyst"} in members
    other = admin_api.put(
        "/api/v1/plants/P200/members/frank", {"role": "supervisor"}, format="json"
    )
    assert other.status_code == 400 and "one role" in other.json()["role"][0]
    assert admin_api.put(url, {"role": "boss"}, format="json").status_code == 400
    assert admin_api.delete(url).status_code == 204
    assert not PlantMembership.objects.filter(user=frank).exists()
    assert admin_api.delete(url).status_code == 404


def test_keys_are_shown_once_listed_by_prefix_and_revoked(admin_api, client, p100):
    created = admin_api.post(
        "/api/v1/api-keys", {"name": "MES P100", "systems": ["MES"], "plants": ["P100"]},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201
    raw, key_id = created.json()["key"], created.json()["id"]
    listed = admin_api.get("/api/v1/api-keys").json()["results"]
    assert raw not in str(listed)
    assert [k["prefix"] for k in listed] == [raw[:12]]
    assert listed[0]["plants"] == ["P100"] and listed[0]["systems"] == ["MES"]
    assert admin_api.post(f"/api/v1/api-keys/{key_id}/revoke").json()["revoked_at"]
    assert ApiKey.objects.find(raw) is None
    refused = client.post("/api/v1/events", {}, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {raw}")  # fmt: skip
    assert refused.status_code == 401
    bad = admin_api.post("/api/v1/api-keys", {"name": "x", "plants": ["P999"]}, format="json")
    assert bad.status_code == 400 and "P999" in bad.json()["plants"][0]


def test_only_admins(supervisor_api, p100):
    for method, url in (("get", "/api/v1/users"), ("post", "/api/v1/users"),
                        ("get", "/api/v1/plants/P100/members"), ("get", "/api/v1/api-keys"),
                        ("post", "/api/v1/api-keys")):  # fmt: skip
        assert getattr(supervisor_api, method)(url, {}, format="json").status_code == 403
    assert not ApiKey.objects.exists()
