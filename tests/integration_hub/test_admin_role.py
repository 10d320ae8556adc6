"""The admin role configures everything, as the README promises: the admin site and every
write API, without being Django staff."""

import pytest
from django.contrib.auth.models import Group

from integration_hub.models import Plant
from monitoring.models import AlertRule
from tests.conftest import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_role_user(django_user_model):
    user = django_user_model.objects.create_user("ines", password="ines-pw")
    user.groups.add(Group.objects.get(name="admin"))
    assert not user.is_staff
    return user


def test_the_admin_role_uses_the_admin_site(client, admin_role_user):
    client.force_login(admin_role_user)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/integration_hub/plant/add/").status_code == 200
    assert client.get("/admin/monitoring/alertrule/").status_code == 200


def test_the_admin_role_signs_in_to_the_admin_site(client, admin_role_user):
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "ines", "password": "ines-pw"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_the_admin_role_writes_through_the_api(admin_role_user, p100):
    api = token_client(admin_role_user)
    plant = api.post("/api/v1/plants", {"code": "P400", "name": "Plant 400"}, format="json")
    assert plant.status_code == 201 and Plant.objects.filter(code="P400").exists()
    rule = api.post(
        "/api/v1/alert-rules", {"name": "Stuck", "kind": "stuck", "plant": "P100"}, format="json"
    )
    assert rule.status_code == 201 and AlertRule.objects.filter(name="Stuck").exists()


def test_a_supervisor_still_cannot(client, supervisor_api, bob):
    response = supervisor_api.post("/api/v1/plants", {"code": "P500", "name": "X"}, format="json")
    assert response.status_code == 403 and not Plant.objects.filter(code="P500").exists()
    client.force_login(bob)
    assert client.get("/admin/").status_code == 302
