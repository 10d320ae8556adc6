"""Replay delivery, called as plain functions against a local HTTP receiver (no worker)."""

from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.utils import timezone

from integration_hub.models import System
from monitoring.models import PayloadEdit, Replay
from monitoring.replay import delivery, requests, slots, sweep
from tests.events import PAYLOAD, dead_letter
from tests.receivers.replay import Receiver
from tracing.models import DeadLetter, TraceEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def mes(p100):
    def point_at(receiver, secret="Bearer mes-secret"):
        System.objects.filter(code="MES").update(
            replay_url=receiver.url, replay_auth_header="Authorization", replay_auth_value=secret
        )

    return point_at


def run_due(replay_row):
    """Deliver now, as the worker would once the backoff has passed."""
    Replay.objects.filter(pk=replay_row.pk).update(not_before=timezone.now())
    return delivery.deliver_batch([replay_row.pk])


def test_a_2xx_replays_it_and_puts_a_hub_event_on_the_timeline(mes, alice):
    letter = dead_letter("PO-1")
    with Receiver() as target:
        mes(target)
        row = requests.request_replay(dead_letter=letter, requested_by=alice)
        assert delivery.deliver_batch([row.pk])["succeeded"] == 1
    got = target.requests[0]
    assert got["body"] == letter.payload
    assert got["headers"]["Idempotency-Key"] == f"hub-dl-{letter.id}-v1"
    assert got["headers"]["X-Correlation-ID"] == "PO-1"
    assert got["headers"]["Authorization"] == "Bearer mes-secret"
    letter.refresh_from_db()
    assert letter.state == "replayed" and letter.closed_at
    attempt = Replay.objects.get().attempts.get()
    assert (attempt.status_code, attempt.outcome, attempt.payload_version) == (200, "succeeded", 1)
    hub_event = TraceEvent.objects.get(source__code="HUB")
    assert (hub_event.transaction_id, hub_event.step, hub_event.status) == (
        letter.transaction_id, "received", "ok",
    )  # fmt: skip
    letter.transaction.refresh_from_db()
    assert letter.transaction.state != "failed"


def test_a_503_is_retried_with_the_same_key_then_succeeds(mes, alice):
    letter = dead_letter("PO-2")
    with Receiver([(503, {}, "busy")]) as target:
        mes(target)
        row = requests.request_replay(dead_letter=letter, requested_by=alice)
        assert delivery.deliver_batch([row.pk])["retry"] == 1
        row.refresh_from_db()
        assert row.state == "queued" and row.not_before > timezone.now()
        assert delivery.deliver_batch([row.pk]).get("claimed", 0) == 0  # not due yet
        assert run_due(row)["succeeded"] == 1
    assert len(set(target.keys())) == 1 and len(target.requests) == 2
    assert [a.status_code for a in row.attempts.order_by("number")] == [503, 200]


def test_retry_after_is_respected(mes, alice, settings):
    letter = dead_letter("PO-3")
    with Receiver([(429, {"Retry-After": "120"}, "slow down")]) as target:
        mes(target)
        row = requests.request_replay(dead_letter=letter, requested_by=alice)
        delivery.deliver_batch([row.pk])
    row.refresh_from_db()
    assert row.not_before >= timezone.now() + timedelta(seconds=110)


def test_a_400_fails_at_once_and_goes_back_to_the_inbox(mes, alice):
    letter = dead_letter("PO-4")
    with Receiver([(400, {}, '{"error": "Routing unknown"}')]) as target:
        mes(target)
        row = requests.request_replay(dead_letter=letter, requested_by=alice)
        assert delivery.deliver_batch([row.pk])["failed"] == 1
    row.refresh_from_db()
    letter.refresh_from_db()
    assert row.state == "failed" and "Routing unknown" in row.response_excerpt
    assert letter.state == "investigating" and len(target.requests) == 1


def test_retries_stop_at_the_limit(mes, alice, settings):
    settings.REPLAY_MAX_ATTEMPTS = 2
    letter = dead_letter("PO-5")
    with Receiver([(500, {}, "x"), (502, {}, "y")]) as target:
        mes(target)
        row = requests.request_replay(dead_letter=letter, requested_by=alice)
        delivery.deliver_batch([row.pk])
        assert run_due(row)["failed"] == 1
    letter.refresh_from_db()
    assert letter.state == "investigating" and row.attempts.count() == 2


def test_no_replay_endpoint_is_a_clear_error(admin_api, p100):
    letter = dead_letter("PO-6")
    response = admin_api.post(
        f"/api/v1/dead-letters/{letter.external_id}/replay", {}, format="json"
    )
    assert response.status_code == 409 and "MES has no replay endpoint" in response.json()["error"]
    letter.refresh_from_db()
    assert letter.state == "new" and not Replay.objects.exists()


def test_edit_and_replay_keeps_the_original_and_previews_a_diff(mes, admin_api):
    letter = dead_letter("PO-7")
    edited = {"ProductionOrder": {"ID": "1000124", "Routing": "R-4712-03"}}
    url = f"/api/v1/dead-letters/{letter.external_id}"
    with Receiver() as target:
        mes(target)
        preview = admin_api.post(f"{url}/preview", {"payload": edited}, format="json").json()
        assert '+    "Routing": "R-4712-03"' in preview["diff"]
        assert preview["headers"]["Authorization"] == "********"
        no_reason = admin_api.post(f"{url}/replay", {"payload": edited}, format="json")
        assert no_reason.status_code == 400 and "reason" in no_reason.json()
        ok = admin_api.post(
            f"{url}/replay", {"payload": edited, "reason": "routing 03 released"}, format="json"
        )
        assert ok.status_code == 202
        delivery.deliver_batch([Replay.objects.get().pk])
    letter.refresh_from_db()
    assert letter.payload == PAYLOAD  # the original, as captured
    assert (letter.edited_payload, letter.payload_version) == (edited, 2)
    assert target.requests[0]["body"] == edited
    assert target.requests[0]["headers"]["Idempotency-Key"].endswith("-v2")
    # The audit trail: who edited what and why, and who asked for the replay and why.
    edit = PayloadEdit.objects.get(dead_letter=letter)
    assert (edit.version, edit.payload, edit.reason) == (2, edited, "routing 03 released")
    assert edit.edited_by.username == "alice"
    change = letter.changes.get(kind="edit")
    assert (change.by.username, change.text) == ("alice", "Payload version 2: routing 03 released")
    replay = Replay.objects.get()
    assert (replay.requested_by.username, replay.reason) == ("alice", "routing 03 released")
    assert (replay.payload, replay.payload_version) == (edited, 2)
    assert replay.attempts.get().payload_version == 2


def test_bulk_replay_leaves_superseded_out_and_holds_later_steps(mes, alice):
    from tests.events import failed
    from tracing.ingest.pipeline import ingest_events

    release = dead_letter("PO-8", order="8")
    ingest_events(
        [
            failed(
                "confirmed",
                flow="production_confirmation",
                correlation_id="CONF-8",
                business_keys={"order": "8"},
                source="MES",
                target="MES",
                payload={"c": 1},
            )  # fmt: skip
        ]
    )
    confirmation = DeadLetter.objects.get(correlation_id="CONF-8")
    superseded = dead_letter("PO-9", order="9")
    DeadLetter.objects.filter(pk=superseded.pk).update(superseded_at=timezone.now())
    with Receiver() as target:
        mes(target)
        bulk = requests.replay_selection(
            dead_letters=DeadLetter.objects.all(), requested_by=alice, selection={}
        )
        assert bulk.touched == 2 and bulk.skipped == {"superseded": 1}
        states = dict(Replay.objects.values_list("dead_letter_id", "state"))
        assert states == {release.id: "queued", confirmation.id: "held"}
        delivery.deliver_batch([r.pk for r in Replay.objects.filter(state="queued")])
        assert Replay.objects.get(dead_letter=confirmation).state == "queued"  # released
        delivery.deliver_batch([Replay.objects.get(dead_letter=confirmation).pk])
    assert [r["headers"]["X-Correlation-ID"] for r in target.requests] == ["PO-8", "CONF-8"]
    assert requests.bulk_progress(bulk)["done"] == 2


def test_cancel_stops_what_is_not_sent(mes, alice):
    letters = [dead_letter(f"PO-{n}", order=str(n)) for n in range(3)]
    with Receiver() as target:
        mes(target)
        bulk = requests.replay_selection(
            dead_letters=DeadLetter.objects.all(), requested_by=alice, selection={}
        )
        assert requests.cancel_bulk(bulk, by=alice) == 3
        delivery.deliver_batch(list(Replay.objects.values_list("pk", flat=True)))
    assert target.requests == []
    assert {d.state for d in DeadLetter.objects.filter(pk__in=[x.pk for x in letters])} == {
        "investigating"
    }


def test_sweep_requeues_a_replay_whose_worker_was_lost(mes, alice):
    letter = dead_letter("PO-10")
    with Receiver() as target:
        mes(target)
        row = requests.request_replay(dead_letter=letter, requested_by=alice)
        delivery.claim([row.pk], token="dead-worker")
        Replay.objects.filter(pk=row.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
        assert sweep.sweep()["requeued"] == 1
        assert delivery.deliver_batch([row.pk])["succeeded"] == 1
    letter.refresh_from_db()
    assert letter.state == "replayed" and len(target.requests) == 1


def test_the_per_system_limit_turns_away_a_task_when_all_slots_are_taken(mes, alice, settings):
    settings.REPLAY_CONCURRENCY_PER_SYSTEM = 1
    letter = dead_letter("PO-11")
    mes_id = System.objects.get(code="MES").id
    with Receiver() as target:
        mes(target)
        row = requests.request_replay(dead_letter=letter, requested_by=alice)
        held = slots.acquire_slot(mes_id, "other-task")
        assert delivery.deliver_batch([row.pk])["busy"] == [row.pk]
        slots.release_slot(held, "other-task")
        assert delivery.deliver_batch([row.pk])["succeeded"] == 1
    assert len(target.requests) == 1


def test_correlation_ids_unsafe_in_a_header_are_percent_encoded_and_all_sent(mes, alice):
    ids = ["PO-Größe→7", "PO-8\r\nX-Evil: 1", "PO 9%", "PO-10"]
    letters = [dead_letter(corr, order=str(n)) for n, corr in enumerate(ids)]
    with Receiver() as target:
        mes(target)
        bulk = requests.replay_selection(
            dead_letters=DeadLetter.objects.all(), requested_by=alice, selection={}
        )
        summary = delivery.deliver_batch(list(bulk.replays.values_list("id", flat=True)))
    assert summary["succeeded"] == 4
    got = {unquote(r["headers"]["X-Correlation-ID"]): r["headers"] for r in target.requests}
    assert set(got) == set(ids)
    assert "X-Evil" not in got["PO-8\r\nX-Evil: 1"]
    assert got["PO-Größe→7"]["X-Correlation-ID"] == "PO-Gr%C3%B6%C3%9Fe%E2%86%927"
    assert got["PO-Größe→7"]["X-Correlation-ID-Encoding"] == "percent"
    assert got["PO-10"]["X-Correlation-ID"] == "PO-10"
    assert "X-Correlation-ID-Encoding" not in got["PO-10"]
    assert all(letter_state(letter) == "replayed" for letter in letters)


def letter_state(letter):
    letter.refresh_from_db()
    return letter.state


def test_an_exception_in_one_delivery_is_that_deliverys_recorded_failure(mes, alice, p100):
    System.objects.filter(code="ERP").update(
        replay_url="http://127.0.0.1:9/erp",
        replay_auth_value="Bearer ключ",  # not Latin-1
    )
    to_erp = dead_letter("PO-20", order="20", target="ERP")
    to_mes = dead_letter("PO-21", order="21")
    with Receiver() as target:
        mes(target)
        rows = [
            requests.request_replay(dead_letter=d, requested_by=alice) for d in (to_erp, to_mes)
        ]
        summary = delivery.deliver_batch([r.pk for r in rows])
    assert (summary["failed"], summary["succeeded"]) == (1, 1)
    failed = Replay.objects.get(dead_letter=to_erp)
    assert failed.state == "failed"
    assert "UnicodeEncodeError" in failed.attempts.get().error
    assert letter_state(to_mes) == "replayed"
    assert letter_state(to_erp) == "investigating"  # back in the inbox, with the reason
