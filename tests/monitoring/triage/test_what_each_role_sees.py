"""Each person sees only what their plants and role allow: who may be assigned, what a
replay's target answered, and SLO figures in impact lines."""

import pytest
from django.utils import timezone

from integration_hub.models import System
from monitoring.models import SLO, SLOStatus
from monitoring.replay import delivery, requests
from tests.conftest import person, token_client
from tests.events import dead_letter
from tests.receivers.replay import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def erin(django_user_model, p200):
    """An analyst of plant P200 only."""
    return person(django_user_model, "erin", "analyst", [p200])


def test_only_people_who_may_triage_that_plant_are_offered(client, alice, dave, erin, carol):
    letter = dead_letter()  # P100
    client.force_login(dave)
    offered = [p.username for p in client.get(f"/dead-letters/{letter.pk}/").context["people"]]
    assert offered == ["alice", "dave"]
    page = client.post("/dead-letters/bulk/", {"action": "assign", "ids": [letter.pk]})
    assert [p.username for p in page.context["people"]] == ["alice", "dave"]
    assert "erin" not in page.content.decode() and "carol" not in page.content.decode()


def test_a_letter_cannot_be_assigned_to_someone_of_another_plant(dave, erin):
    letter = dead_letter()
    api = token_client(dave)
    url = f"/api/v1/dead-letters/{letter.external_id}/assign"
    refused = api.post(url, {"assignee": "erin"}, format="json")
    assert refused.status_code == 400 and "assignee" in refused.json()
    assert api.post(url, {"assignee": "nobody-at-all"}, format="json").json() != refused.json()
    letter.refresh_from_db()
    assert letter.assignee is None
    assert api.post(url, {"assignee": "dave"}, format="json").status_code == 200


def test_what_the_target_answered_is_for_analysts_only(alice, dave, supervisor_api):
    letter = dead_letter()
    with Receiver([(422, {}, "secret detail of MES")]) as target:
        System.objects.filter(code="MES").update(replay_url=target.url + "?token=s3cret")
        row = requests.request_replay(dead_letter=letter, requested_by=alice)
        delivery.deliver_batch([row.pk])
    url = f"/api/v1/dead-letters/{letter.external_id}"
    analyst_view = token_client(dave).get(url).json()["replays"][0]
    assert "secret detail of MES" in analyst_view["attempts"][0]["response_excerpt"]
    assert "s3cret" in analyst_view["attempts"][0]["url"]
    supervisor_view = supervisor_api.get(url).content.decode()
    assert "secret detail of MES" not in supervisor_view and "s3cret" not in supervisor_view


def test_impact_lines_use_the_plants_own_slo_figures(admin_api, p100):
    slo = SLO.objects.get(slug="order-release-latency")
    SLOStatus.objects.create(
        slo=slo, plant=None, attainment=0.5, status="breaching", evaluated_at=timezone.now()
    )
    letter = dead_letter()
    impact = admin_api.get(f"/api/v1/dead-letters/{letter.external_id}").json()["impact"]
    assert "50.0 %" not in str(impact)
