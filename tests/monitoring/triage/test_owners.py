"""Owner rules: new dead letters go to the owner of the most specific matching rule (master-data
errors to the plant's master-data owner), who is emailed; analysts keep their inbox state."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integration_hub.models import Flow, System
from monitoring.models import OwnerRule
from monitoring.triage.owners import assign_owners
from tests.conftest import person
from tests.events import dead_letter

pytestmark = pytest.mark.django_db


@pytest.fixture
def erin(django_user_model, p100):
    """Erin, P100's master-data analyst."""
    user = person(django_user_model, "erin", "analyst", [p100])
    user.email = "erin@plant.example"
    user.save()
    return user


@pytest.fixture
def rules(p100, dave, erin):
    dave.email = "dave@plant.example"
    dave.save()
    return [
        OwnerRule.objects.create(name="P100 support", plant=p100, owner=dave),
        OwnerRule.objects.create(
            name="P100 master data", plant=p100, error_class="master_data", owner=erin
        ),
    ]


def test_the_most_specific_rule_owns_and_the_owners_are_emailed(rules, dave, erin, smtp, p100):
    master = dead_letter("PO-1")  # master_data, to MES
    other = dead_letter("PO-2", error_class="business_rule", code="QTY", message="Qty differs")
    given = assign_owners(timezone.now() + timedelta(seconds=1))
    assert given == {"erin": [master.id], "dave": [other.id]}
    master.refresh_from_db()
    other.refresh_from_db()
    assert (master.assignee, master.state) == (erin, "new")  # nobody has looked yet
    assert other.assignee == dave
    change = master.changes.get(kind="assign")
    assert change.by is None and change.text == "Owner rule 'P100 master data'"

    mails = {m["to"][0]: m["message"] for m in smtp.messages}
    assert set(mails) == {"erin@plant.example", "dave@plant.example"}
    body = mails["erin@plant.example"].get_content()
    assert mails["erin@plant.example"]["Subject"] == "[hub] 1 new dead letter for you"
    assert "P100 order_release → MES: master_data" in body
    assert f"http://127.0.0.1:8000/dead-letters/{master.id}/" in body
    assert "/dead-letters/?assignee=erin" in body


def test_a_letter_is_handed_out_once_and_unassigned_ones_stay_unassigned(rules, erin):
    letter = dead_letter("PO-3")
    assign_owners(timezone.now() + timedelta(seconds=1))
    letter.refresh_from_db()
    letter.assignee = None
    letter.save(update_fields=["assignee"])  # an analyst took it off erin
    assert assign_owners(timezone.now() + timedelta(minutes=5)) == {}
    letter.refresh_from_db()
    assert letter.assignee is None


def test_a_narrower_rule_on_flow_and_target_beats_a_plant_rule(rules, p100, django_user_model):
    mes_owner = person(django_user_model, "frank", "analyst", [p100])
    OwnerRule.objects.create(
        name="Releases to MES, master data", plant=p100, error_class="master_data",
        flow=Flow.objects.get(code="order_release"), target=System.objects.get(code="MES"),
        owner=mes_owner,
    )  # fmt: skip
    letter = dead_letter("PO-4")
    assert assign_owners(timezone.now() + timedelta(seconds=1)) == {"frank": [letter.id]}


def test_an_owner_who_may_not_triage_the_plant_is_passed_over(p100, carol, dave):
    OwnerRule.objects.create(name="wrong", plant=p100, error_class="master_data", owner=carol)
    OwnerRule.objects.create(name="P100 support", plant=p100, owner=dave)
    letter = dead_letter("PO-5")
    assert assign_owners(timezone.now() + timedelta(seconds=1)) == {"dave": [letter.id]}


def test_owner_rules_by_api_for_admins_only(admin_api, supervisor_api, p100, dave, carol):
    body = {"name": "P100 master data", "plant": "P100", "error_class": "master_data",
            "owner": "dave"}  # fmt: skip
    assert supervisor_api.post("/api/v1/owner-rules", body, format="json").status_code == 403
    created = admin_api.post("/api/v1/owner-rules", body, format="json")
    assert created.status_code == 201
    assert created.json() | {"id": 0} == {
        "id": 0, "name": "P100 master data", "plant": "P100", "flow": None,
        "error_class": "master_data", "target": None, "owner": "dave", "enabled": True,
    }  # fmt: skip
    refused = admin_api.post("/api/v1/owner-rules", body | {"owner": "carol"}, format="json")
    assert refused.status_code == 400 and "may not triage" in refused.json()["owner"][0]
    bad = admin_api.post("/api/v1/owner-rules", body | {"error_class": "oops"}, format="json")
    assert bad.status_code == 400 and "error_class" in bad.json()
    pk = created.json()["id"]
    assert admin_api.delete(f"/api/v1/owner-rules/{pk}").status_code == 204
    assert OwnerRule.objects.count() == 0
