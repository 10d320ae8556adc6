"""Dead letters and bulk actions stay in their plant: ids are per plant, and a bulk replay's
progress and cancel reach only the dead letters of the reader's plants."""

import pytest

from integration_hub.models import ApiKey, Plant, System
from monitoring.models import Replay
from monitoring.replay import requests
from tests.conftest import person, token_client
from tests.events import dead_letter
from tracing.models import DeadLetter

pytestmark = pytest.mark.django_db


def report(plant, **fields):
    return {
        "id": "mw-1",
        "correlation_id": f"PO-{plant}",
        "flow": "order_release",
        "source": "MW",
        "target": "MES",
        "plant": plant,
        "error": {"class": "transient", "code": "HTTP_503", "message": "MES unavailable"},
        "payload": {"secret of": plant},
        **fields,
    }


def post_report(client, key, body):
    return client.post(
        "/api/v1/dead-letters", body, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )  # fmt: skip


@pytest.fixture
def p200_analyst_api(django_user_model, p200):
    return token_client(person(django_user_model, "erin", "analyst", [p200]))


def test_a_known_id_of_another_plant_is_a_new_dead_letter_not_an_answer(client, p100, p200):
    _, any_plant = ApiKey.issue("middleware")
    assert post_report(client, any_plant, report("P100")).status_code == 201
    _, plant_b = ApiKey.issue("P200 middleware", plants=[p200])
    response = post_report(client, plant_b, report("P200"))
    assert response.status_code == 201
    assert response.json()["plant"] == "P200"
    assert response.json()["payload"] == {"secret of": "P200"}
    assert "P100" not in response.content.decode()
    assert DeadLetter.objects.filter(external_id="mw-1").count() == 2
    assert DeadLetter.objects.get(plant=p100).payload == {"secret of": "P100"}


def test_reading_an_id_two_plants_share_asks_which_plant(client, supervisor_api, p100, p200):
    _, key = ApiKey.issue("middleware")
    post_report(client, key, report("P100"))
    post_report(client, key, report("P200"))
    both = supervisor_api.get("/api/v1/dead-letters/mw-1")
    assert both.status_code == 400
    assert "P100, P200" in both.json()["plant"][0]
    one = supervisor_api.get("/api/v1/dead-letters/mw-1", {"plant": "P200"})
    assert (one.status_code, one.json()["plant"]) == (200, "P200")


@pytest.fixture
def bulk(alice, p100, p200):
    """Alice replays a dead letter of each plant in one bulk (no worker: rows stay queued)."""
    System.objects.filter(code="MES").update(replay_url="http://127.0.0.1:9/replay")
    dead_letter("PO-100", plant="P100", order="100")
    dead_letter("PO-200", plant="P200", order="200")
    return requests.replay_selection(
        dead_letters=DeadLetter.objects.all(), requested_by=alice, selection={}
    )


def test_bulk_progress_shows_only_the_readers_plants(p200_analyst_api, bulk):
    progress = p200_analyst_api.get(f"/api/v1/dead-letters/bulk/{bulk.id}").json()
    assert (progress["total"], progress["remaining"]) == (1, 1)


def test_bulk_cancel_stops_only_the_readers_plants(p200_analyst_api, bulk):
    response = p200_analyst_api.post(f"/api/v1/dead-letters/bulk/{bulk.id}/cancel")
    assert response.status_code == 200
    assert response.json()["cancelled"] == 1
    states = dict(Replay.objects.values_list("dead_letter__plant__code", "state"))
    assert states == {"P100": "queued", "P200": "cancelled"}
    assert DeadLetter.objects.get(plant__code="P100").state == "replay_queued"


def test_the_bulk_page_and_its_cancel_follow_plant_access(client, django_user_model, bulk):
    analyst = person(django_user_model, "erin", "analyst", [bulk.replays.get(
        dead_letter__plant__code="P200").dead_letter.plant])  # fmt: skip
    client.force_login(analyst)
    page = client.get(f"/dead-letters/bulk/{bulk.id}/")
    assert page.status_code == 200
    assert page.context["progress"]["total"] == 1
    client.post(f"/dead-letters/bulk/{bulk.id}/")
    states = dict(Replay.objects.values_list("dead_letter__plant__code", "state"))
    assert states == {"P100": "queued", "P200": "cancelled"}


def test_someone_who_sees_none_of_a_bulk_gets_404(client, django_user_model, bulk):
    outsider = person(django_user_model, "otto", "analyst", [Plant.objects.create(
        code="P300", name="Plant 300")])  # fmt: skip
    client.force_login(outsider)
    assert client.get(f"/dead-letters/bulk/{bulk.id}/").status_code == 404
    assert client.post(f"/dead-letters/bulk/{bulk.id}/").status_code == 404
    assert set(Replay.objects.values_list("state", flat=True)) == {"queued"}
