"""Plant calendars: shifts and planned downtime by API, and the arithmetic of a clock that
stops in downtime, worked out by hand (across midnight and a DST change in the plant's zone)."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from integration_hub import calendars
from integration_hub.calendars import Windows, shift_at
from integration_hub.models import Downtime, Plant, Shift

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def test_an_order_released_10s_before_a_two_hour_stop_and_acknowledged_20s_after_took_30s():
    stop = Windows([(T0, T0 + timedelta(hours=2))])
    released, acknowledged = T0 - 10 * S, T0 + timedelta(hours=2) + 20 * S
    assert stop.elapsed(released, acknowledged) == 30
    # a 60 s threshold passes 50 s after the stop ends, not 50 s into it
    assert stop.deadline(released, 60) == T0 + timedelta(hours=2) + 50 * S
    assert stop.deadline(T0 + timedelta(minutes=5), 60) == T0 + timedelta(hours=2, seconds=60)
    assert Windows().deadline(released, 60) == released + 60 * S


def test_overlapping_windows_count_once_and_later_ones_add_up():
    stops = Windows(
        [(T0, T0 + timedelta(hours=1)), (T0 + timedelta(minutes=30), T0 + timedelta(hours=2)),
         (T0 + timedelta(hours=3), T0 + timedelta(hours=4))]
    )  # fmt: skip
    assert stops.spans == [
        (T0, T0 + timedelta(hours=2)),
        (T0 + timedelta(hours=3), T0 + timedelta(hours=4)),
    ]
    start = T0 - timedelta(hours=1)
    assert stops.elapsed(start, T0 + timedelta(hours=5)) == 3 * 3600
    assert stops.deadline(start, 2 * 3600) == T0 + timedelta(hours=3)  # 1 h before, 1 h between
    assert stops.covers(T0 + timedelta(hours=3, minutes=1))
    assert not stops.covers(T0 + timedelta(hours=2, minutes=1))


@pytest.fixture
def berlin(admin_api, p100):
    Plant.objects.filter(pk=p100.pk).update(timezone="Europe/Berlin")
    return Plant.objects.get(pk=p100.pk)


def test_downtime_in_local_time_across_the_spring_dst_change(admin_api, berlin):
    """29 March 2026: Berlin's clocks jump from 02:00 to 03:00; 01:00-04:00 local is 2 hours."""
    response = admin_api.post(
        "/api/v1/plants/P100/downtime",
        {"start": "2026-03-29T01:00", "end": "2026-03-29T04:00", "reason": "Line 2 overhaul"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    row = Downtime.objects.get(pk=body["id"])
    assert (row.start, row.end) == (
        datetime(2026, 3, 29, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 2, 0, tzinfo=UTC),
    )
    assert (
        body["start"] == "2026-03-29T01:00:00+01:00" and body["end"] == "2026-03-29T04:00:00+02:00"
    )
    windows = calendars.Calendar.everything().windows(berlin.id)
    released = datetime(2026, 3, 28, 23, 59, tzinfo=UTC)  # 00:59 local
    acknowledged = datetime(2026, 3, 29, 2, 1, tzinfo=UTC)  # 04:01 local
    assert windows.elapsed(released, acknowledged) == 2 * 60
    skipped = admin_api.post(
        "/api/v1/plants/P100/downtime",
        {"start": "2026-03-29T02:30", "end": "2026-03-29T05:00", "reason": "x"},
        format="json",
    )
    assert skipped.status_code == 400 and "start" in skipped.json()


def test_an_overnight_shift_runs_past_midnight_on_the_day_after_it_starts(admin_api, berlin):
    shifts = [
        {"name": "Early", "days": [0, 1, 2, 3, 4], "start": "06:00", "end": "14:00"},
        {"name": "Night", "days": [6, 0, 1, 2, 3], "start": "22:00", "end": "06:00"},
    ]
    response = admin_api.put("/api/v1/plants/P100/shifts", shifts, format="json")
    assert response.status_code == 200
    assert [s["overnight"] for s in response.json()] == [False, True]
    assert admin_api.get("/api/v1/plants/P100/shifts").json()[1]["days"] == [0, 1, 2, 3, 6]

    def at(text):  # local Berlin time
        return datetime.fromisoformat(text).replace(tzinfo=berlin.tzinfo)

    assert shift_at(berlin, at("2026-11-23T03:00")).name == "Night"  # Monday, from Sunday night
    assert shift_at(berlin, at("2026-11-23T07:00")).name == "Early"
    assert shift_at(berlin, at("2026-11-23T15:00")) is None
    assert shift_at(berlin, at("2026-11-28T03:00")) is None  # Saturday: Friday has no night
    # the day the clocks go back: 03:00 local still belongs to Saturday night's shift? Saturday
    # (5) is not a night day, so no; Sunday 23:30 is.
    assert shift_at(berlin, at("2026-10-25T23:30")).name == "Night"
    # replaced as a whole
    admin_api.put("/api/v1/plants/P100/shifts", shifts[:1], format="json")
    assert list(Shift.objects.values_list("name", flat=True)) == ["Early"]


@pytest.mark.parametrize(
    "body, field",
    [
        ([{"name": "A", "days": [7], "start": "06:00", "end": "14:00"}], "days"),
        ([{"name": "A", "days": [1], "start": "6 am", "end": "14:00"}], "start"),
        ([{"name": "A", "days": [1], "start": "06:00", "end": "06:00"}], "end"),
        (
            [
                {"name": "A", "days": [1], "start": "06:00", "end": "14:00"},
                {"name": "A", "days": [2], "start": "06:00", "end": "14:00"},
            ],
            "name",
        ),
    ],
)
def test_bad_shifts_are_refused_naming_the_field_and_nothing_is_replaced(
    admin_api, p100, body, field
):
    Shift.objects.create(plant=p100, name="Kept", days=[0], start="06:00", end="14:00")
    response = admin_api.put("/api/v1/plants/P100/shifts", body, format="json")
    assert response.status_code == 400 and field in str(response.json())
    assert list(Shift.objects.values_list("name", flat=True)) == ["Kept"]


def test_downtime_lists_deletes_and_refuses_bad_input(
    admin_api, p100, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(calendars.app, "send_task", lambda name, args: sent.append((name, args)))
    bad = admin_api.post(
        "/api/v1/plants/P100/downtime",
        {"start": "2026-11-23T12:00Z", "end": "2026-11-23T10:00Z", "reason": "x"},
        format="json",
    )
    assert bad.status_code == 400 and "end" in bad.json()
    unknown = admin_api.post(
        "/api/v1/plants/P100/downtime",
        {
            "start": "2026-11-23T10:00Z",
            "end": "2026-11-23T12:00Z",
            "reason": "x",
            "flows": ["nope"],
        },
        format="json",
    )
    assert unknown.status_code == 400 and "flows" in unknown.json()
    assert Downtime.objects.count() == 0 and sent == []

    with django_capture_on_commit_callbacks(execute=True):
        created = admin_api.post(
            "/api/v1/plants/P100/downtime",
        {"start": "2026-11-23T10:00Z", "end": "2026-11-23T12:00Z", "reason": "Stocktake",
         "flows": ["goods_receipt"]},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201
    pk = created.json()["id"]
    assert sent == [
        (
            "monitoring.recompute_downtime",
            [p100.id, "2026-11-23T10:00:00+00:00", "2026-11-23T12:00:00+00:00"],
        )
    ]
    listed = admin_api.get("/api/v1/plants/P100/downtime").json()
    assert [(d["id"], d["reason"], d["flows"]) for d in listed] == [
        (pk, "Stocktake", ["goods_receipt"])
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_api.delete(f"/api/v1/plants/P100/downtime/{pk}").status_code == 204
    assert Downtime.objects.count() == 0 and len(sent) == 2


def test_people_read_their_plants_calendar_and_only_admins_change_it(
    p100, p200, supervisor_api, p200_supervisor_api
):
    Downtime.objects.create(plant=p100, start=T0, end=T0 + timedelta(hours=1), reason="Audit")
    assert [d["reason"] for d in supervisor_api.get("/api/v1/plants/P100/downtime").json()] == [
        "Audit"
    ]
    assert p200_supervisor_api.get("/api/v1/plants/P100/downtime").status_code == 404
    refused = supervisor_api.post(
        "/api/v1/plants/P100/downtime",
        {"start": "2026-11-23T10:00Z", "end": "2026-11-23T12:00Z", "reason": "x"},
        format="json",
    )
    assert refused.status_code == 403 and Downtime.objects.count() == 1


def test_the_demo_gets_its_plants_shifts_and_planned_downtime_once(
    db, django_capture_on_commit_callbacks
):
    """`make demo` runs it on a fresh database, before the simulator has created any plant."""
    with django_capture_on_commit_callbacks() as callbacks:
        call_command("ensure_demo_calendar", stdout=io.StringIO())
        call_command("ensure_demo_calendar", stdout=io.StringIO())
    p100 = Plant.objects.get(code="P100")
    assert sorted(Plant.objects.values_list("code", flat=True)) == ["P100", "P200"]
    assert Shift.objects.filter(plant=p100).count() == 3
    reasons = sorted(Downtime.objects.filter(plant=p100).values_list("reason", flat=True))
    assert reasons == ["Line 2 changeover (planned)", "Warehouse stocktake (planned)"]
    stocktake = Downtime.objects.get(plant=p100, reason__startswith="Warehouse")
    assert sorted(f.code for f in stocktake.flows.all()) == ["goods_receipt", "inventory_movement"]
    assert len(callbacks) == 4  # two plants × two windows: their figures are recomputed


def test_admins_plan_downtime_in_the_admin_and_its_span_is_recomputed(
    client, alice, p100, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(calendars.app, "send_task", lambda name, args: sent.append((name, args)))
    client.force_login(alice)
    form = {
        "code": "P100", "name": p100.name, "timezone": "UTC",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "retention_overrides-TOTAL_FORMS": "0", "retention_overrides-INITIAL_FORMS": "0",
        "shifts-TOTAL_FORMS": "1", "shifts-INITIAL_FORMS": "0",
        "shifts-0-name": "Early", "shifts-0-days": "[0, 1, 2, 3, 4]",
        "shifts-0-start": "06:00", "shifts-0-end": "14:00",
        "downtimes-TOTAL_FORMS": "1", "downtimes-INITIAL_FORMS": "0",
        "downtimes-0-start_0": "2026-11-23", "downtimes-0-start_1": "10:00:00",
        "downtimes-0-end_0": "2026-11-23", "downtimes-0-end_1": "12:00:00",
        "downtimes-0-reason": "Line stop",
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/integration_hub/plant/{p100.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    row = Downtime.objects.get()
    assert (row.reason, row.created_by) == ("Line stop", alice)
    assert Shift.objects.get().days == [0, 1, 2, 3, 4]
    assert sent == [
        (
            "monitoring.recompute_downtime",
            [p100.id, "2026-11-23T10:00:00+00:00", "2026-11-23T12:00:00+00:00"],
        )
    ]
