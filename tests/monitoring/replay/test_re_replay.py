"""Deliberate re-replay: after a replay was sent, sending again needs a reason and goes with a new
idempotency key, so a target that honours keys processes it; double clicks and retries reuse
the key of the replay already queued."""

import pytest

from integration_hub.models import System
from monitoring.models import Replay
from monitoring.replay import delivery, preview, requests
from tests.conftest import token_client
from tests.events import dead_letter
from tests.receivers.replay import Receiver

pytestmark = pytest.mark.django_db


def replayed(letter, by):
    row = requests.request_replay(dead_letter=letter, requested_by=by)
    assert delivery.deliver_batch([row.pk])["succeeded"] == 1
    letter.refresh_from_db()
    return row


def test_replaying_a_replayed_letter_again_needs_a_reason_and_gets_a_new_key(mes_target, dave):
    letter = dead_letter("PO-7")
    first = replayed(letter, dave)
    assert letter.state == "replayed"
    assert preview.preview(letter)["headers"]["Idempotency-Key"] == f"hub-dl-{letter.id}-v1-r2"

    with pytest.raises(preview.ReasonRequired) as refused:
        requests.request_replay(dead_letter=letter, requested_by=dave)
    assert refused.value.field == "reason"
    letter.refresh_from_db()
    assert letter.state == "replayed" and Replay.objects.count() == 1  # nothing half-written

    again = requests.request_replay(
        dead_letter=letter, requested_by=dave, reason="MES lost the order after a restore"
    )
    assert again.idempotency_key == f"hub-dl-{letter.id}-v1-r2" != first.idempotency_key
    assert (again.reason, again.requested_by) == ("MES lost the order after a restore", dave)
    assert delivery.deliver_batch([again.pk])["succeeded"] == 1
    # the idempotent target applied both: the second round is a different key
    assert mes_target.keys() == [f"hub-dl-{letter.id}-v1", f"hub-dl-{letter.id}-v1-r2"]
    assert mes_target.applied[f"hub-dl-{letter.id}-v1-r2"] == 1
    change = letter.changes.filter(from_state="replayed", to_state="replay_queued").get()
    assert change.by == dave
    assert "round 2" in change.text and "MES lost the order after a restore" in change.text
    letter.refresh_from_db()
    assert letter.state == "replayed"


def test_after_a_failed_replay_the_next_one_is_a_new_round(p100, dave):
    letter = dead_letter("PO-8")
    with Receiver([(400, {}, "Routing unknown")]) as failing:
        System.objects.filter(code="MES").update(replay_url=failing.url)
        row = requests.request_replay(dead_letter=letter, requested_by=dave)
        assert delivery.deliver_batch([row.pk])["failed"] == 1
        letter.refresh_from_db()
        assert letter.state == "investigating"
        again = requests.request_replay(
            dead_letter=letter, requested_by=dave, reason="Routing released in MES"
        )
        assert delivery.deliver_batch([again.pk])["succeeded"] == 1
    assert failing.keys() == [f"hub-dl-{letter.id}-v1", f"hub-dl-{letter.id}-v1-r2"]


def test_a_double_click_reuses_the_queued_replay(mes_target, dave):
    letter = dead_letter("PO-9")
    first = requests.request_replay(dead_letter=letter, requested_by=dave)
    second = requests.request_replay(dead_letter=letter, requested_by=dave)
    assert second.pk == first.pk and Replay.objects.count() == 1
    assert delivery.deliver_batch([first.pk])["succeeded"] == 1
    assert mes_target.keys() == [f"hub-dl-{letter.id}-v1"]


def test_the_api_refuses_a_re_replay_without_a_reason_naming_the_field(mes_target, dave):
    letter = dead_letter("PO-10")
    replayed(letter, dave)
    api = token_client(dave)
    url = f"/api/v1/dead-letters/{letter.external_id}/replay"
    response = api.post(url, {}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json() and "sent 1 time" in response.json()["reason"][0]
    response = api.post(url, {"reason": "mes_target restored from backup"}, format="json")
    assert response.status_code == 202
    assert Replay.objects.filter(dead_letter=letter).latest("id").idempotency_key.endswith("-r2")


def test_resolved_and_discarded_letters_stay_closed(mes_target, dave):
    letter = dead_letter("PO-11")
    letter.state = "resolved"
    letter.save(update_fields=["state"])
    with pytest.raises(preview.NotReplayable):
        requests.request_replay(dead_letter=letter, requested_by=dave, reason="please")
