"""The triage inbox: per-plant access, filters, acting with a reason and an audit trail, groups
and bulk actions, the pages."""

import pytest

from integration_hub.models import System
from monitoring.triage import selectors
from tests.events import dead_letter
from tracing.models import DeadLetter

pytestmark = pytest.mark.django_db


def test_people_see_only_their_plants_dead_letters(p100, p200, p200_supervisor_api):
    dead_letter("PO-100", plant="P100")
    dead_letter("PO-200", plant="P200")
    listed = p200_supervisor_api.get("/api/v1/dead-letters").json()["results"]
    assert [d["correlation_id"] for d in listed] == ["PO-200"]
    assert p200_supervisor_api.get("/api/v1/dead-letters/" + "evt-x").status_code == 404
    other = DeadLetter.objects.get(correlation_id="PO-100").external_id
    assert p200_supervisor_api.get(f"/api/v1/dead-letters/{other}").status_code == 404


def test_list_filters_and_rejects_an_unknown_value(admin_api, p100):
    dead_letter("PO-1")
    dead_letter("PO-2", code="OTHER", message="something else")
    rows = admin_api.get("/api/v1/dead-letters", {"state": "new", "plant": "P100"}).json()
    assert rows["count"] == 2
    fp = DeadLetter.objects.get(correlation_id="PO-2").fingerprint
    rows = admin_api.get("/api/v1/dead-letters", {"fingerprint": fp}).json()["results"]
    assert [r["correlation_id"] for r in rows] == ["PO-2"]
    bad = admin_api.get("/api/v1/dead-letters", {"state": "sleeping"})
    assert bad.status_code == 400 and "state" in bad.json()


def test_a_supervisor_may_read_but_not_act(supervisor_api, p100):
    letter = dead_letter()
    response = supervisor_api.post(
        f"/api/v1/dead-letters/{letter.external_id}/resolve", {"reason": "x"}, format="json"
    )
    assert response.status_code == 403
    letter.refresh_from_db()
    assert letter.state == "new" and not letter.changes.exists()


def test_resolve_needs_a_reason_and_records_who(admin_api, alice, p100):
    letter = dead_letter()
    url = f"/api/v1/dead-letters/{letter.external_id}/resolve"
    missing = admin_api.post(url, {}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()
    done = admin_api.post(url, {"reason": "fixed routing in MES by hand"}, format="json").json()
    assert done["state"] == "resolved"
    change = letter.changes.get()
    assert (change.by, change.from_state, change.to_state) == (alice, "new", "resolved")
    assert change.text == "fixed routing in MES by hand"


def test_assign_and_notes_are_recorded(admin_api, dave, p100):
    letter = dead_letter()
    base = f"/api/v1/dead-letters/{letter.external_id}"
    assigned = admin_api.post(f"{base}/assign", {"assignee": "dave"}, format="json").json()
    assert (assigned["assignee"], assigned["state"]) == ("dave", "investigating")
    noted = admin_api.post(f"{base}/notes", {"text": "asked MES team"}, format="json")
    assert noted.status_code == 201
    assert [n["text"] for n in noted.json()["notes"]] == ["asked MES team"]
    unknown = admin_api.post(f"{base}/assign", {"assignee": "zed"}, format="json")
    assert unknown.status_code == 400 and "assignee" in unknown.json()


def test_an_analyst_of_another_plant_cannot_touch_it(dave, p200):
    from tests.conftest import token_client

    letter = dead_letter("PO-200", plant="P200")
    response = token_client(dave).post(
        f"/api/v1/dead-letters/{letter.external_id}/discard", {"reason": "x"}, format="json"
    )
    assert response.status_code == 404
    letter.refresh_from_db()
    assert letter.state == "new"


def test_groups_put_one_cause_in_one_group(admin_api, p100):
    for n in range(3):
        dead_letter(f"PO-{n}", order=str(n))
    dead_letter("PO-9", code="XSD", message="bad schema")
    groups = admin_api.get("/api/v1/dead-letter-groups").json()["results"]
    assert sorted(g["count"] for g in groups) == [1, 3]
    big = next(g for g in groups if g["count"] == 3)
    assert big["plants"] == ["P100"] and big["flows"] == ["order_release"]
    assert "3 order releases waiting for MES at P100" in big["impact"]["lines"][0]["text"]


def test_bulk_resolve_by_filter_says_how_many_it_touched(admin_api, p100):
    for n in range(3):
        dead_letter(f"PO-{n}", order=str(n))
    body = {"action": "resolve", "filter": {"plant": "P100"}, "reason": "cleanup"}
    dry = admin_api.post("/api/v1/dead-letters/bulk", {**body, "dry_run": True}, format="json")
    assert dry.json()["touch"] == 3 and DeadLetter.objects.filter(state="new").count() == 3
    done = admin_api.post("/api/v1/dead-letters/bulk", body, format="json").json()
    assert done["touched"] == 3 and done["bulk"]["url"].startswith("/api/v1/dead-letters/bulk/")
    assert DeadLetter.objects.filter(state="resolved").count() == 3
    bad = admin_api.post(
        "/api/v1/dead-letters/bulk",
        {"action": "resolve", "filter": {"colour": "red"}},
        format="json",
    )
    assert bad.status_code == 400 and "filter.colour" in bad.json()


def test_inbox_page_lists_groups_and_detail_shows_payload(client, alice, p100):
    letter = dead_letter("PO-3", order="3")
    client.force_login(alice)
    page = client.get("/dead-letters/").content.decode()
    assert "ROUTING_NOT_FOUND" in page and "1 order release waiting for MES at P100" in page
    detail = client.get(f"/dead-letters/{letter.pk}/").content.decode()
    assert "R-4712-02" in detail and "/transactions/order_release/PO-3/" in detail


def test_bulk_confirmation_states_the_count(client, alice, p100):
    for n in range(2):
        dead_letter(f"PO-{n}", order=str(n))
    System.objects.filter(code="MES").update(replay_url="http://127.0.0.1:9/replay")
    client.force_login(alice)
    page = client.post(
        "/dead-letters/bulk/", {"action": "replay", "scope": "filter", "state": "open"}
    ).content.decode()
    assert "This will replay <strong>2</strong> dead letters" in page
    assert DeadLetter.objects.filter(state="new").count() == 2


def test_groups_by_impact_put_the_cause_holding_most_transactions_first(admin_api, p100):
    for n in range(3):  # older, but holds three orders
        dead_letter(f"PO-OLD-{n}", order=f"9{n}", code="MAT_LOCKED", message="Material locked")
    dead_letter("PO-NEW", order="1", code="ROUTING_NOT_FOUND")  # newest, holds one
    newest = admin_api.get("/api/v1/dead-letter-groups").json()["results"]
    by_impact = admin_api.get("/api/v1/dead-letter-groups", {"sort": "impact"}).json()["results"]
    assert [g["error"]["code"] for g in newest] == ["ROUTING_NOT_FOUND", "MAT_LOCKED"]
    assert [g["error"]["code"] for g in by_impact] == ["MAT_LOCKED", "ROUTING_NOT_FOUND"]
    assert by_impact[0]["impact"]["held"] == 3


def test_impact_ranks_every_group_before_cutting_to_the_page(alice, p100):
    """Cut first and the oldest cause, holding the most, would fall off a page of two."""
    for n in range(3):
        dead_letter(f"PO-OLD-{n}", order=f"9{n}", code="MAT_LOCKED", message="Material locked")
    dead_letter("PO-B", order="1", code="ROUTING_NOT_FOUND")
    dead_letter("PO-C", order="2", code="QTY_MISMATCH", message="Quantity differs")
    qs = selectors.dead_letters(user=alice)
    newest = selectors.groups(qs, sort="newest", limit=2)
    by_impact = selectors.groups(qs, sort="impact", limit=2)
    assert [g["error"]["code"] for g in newest] == ["QTY_MISMATCH", "ROUTING_NOT_FOUND"]
    assert [g["error"]["code"] for g in by_impact] == ["MAT_LOCKED", "QTY_MISMATCH"]
    assert [g["impact"]["held"] for g in by_impact] == [3, 1]


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("notes", {"text": "a\u0000b"}, "text"),
        ("resolve", {"reason": "fixed\u0000"}, "reason"),
        ("replay", {"reason": "x", "payload": {"a": "\u0000"}}, "payload"),
    ],
)
def test_a_nul_in_an_action_is_refused_naming_the_field(admin_api, p100, path, body, field):
    letter = dead_letter()
    response = admin_api.post(
        f"/api/v1/dead-letters/{letter.external_id}/{path}", body, format="json"
    )
    assert response.status_code == 400 and field in response.json()
    letter.refresh_from_db()
    assert letter.state == "new" and not letter.changes.exists()


def test_a_nul_in_a_bulk_selection_is_refused(admin_api, p100):
    body = {"action": "resolve", "ids": ["a\u0000"], "reason": "x"}
    response = admin_api.post("/api/v1/dead-letters/bulk", body, format="json")
    assert response.status_code == 400 and "ids" in response.json()
