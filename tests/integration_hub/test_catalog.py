"""The catalog: seeded defaults, validation, and the admin-only API by code."""

import pytest
from django.core.exceptions import ValidationError

from integration_hub.models import Flow, System, SystemAlias

pytestmark = pytest.mark.django_db


def test_migration_seeds_the_seven_default_flows_and_five_systems():
    assert set(Flow.objects.values_list("code", flat=True)) == {
        "order_release",
        "material_consumption",
        "production_confirmation",
        "goods_receipt",
        "inventory_movement",
        "quality_hold",
        "shipment_confirmation",
    }
    assert {"ERP", "MES", "WMS", "QMS", "MW"} <= set(System.objects.values_list("code", flat=True))
    hold = Flow.objects.get(code="quality_hold")
    assert hold.milestones[:3] == ["hold_applied", "hold_propagated", "released"]
    assert set(hold.completing_milestones) == {"released", "scrapped"}
    release = Flow.objects.get(code="order_release")
    assert release.source_system.code == "ERP"
    assert [s.code for s in release.target_systems.all()] == ["MES"]


@pytest.mark.parametrize(
    "milestones, completing, field",
    [
        ([], ["done"], "milestones"),
        (["a", "a"], ["a"], "milestones"),
        (["a", "b"], ["c"], "completing_milestones"),
        (["a", "b"], [], "completing_milestones"),
    ],
)
def test_flow_validation_names_the_field(milestones, completing, field):
    flow = Flow(code="x", name="X", milestones=milestones, completing_milestones=completing)
    with pytest.raises(ValidationError) as exc:
        flow.full_clean()
    assert field in exc.value.message_dict


def test_catalog_api_needs_an_admin(client, supervisor_api):
    assert client.get("/api/v1/systems").status_code in (401, 403)
    response = supervisor_api.get("/api/v1/systems")
    assert response.status_code == 403
    assert "permission" in response.json()["detail"].lower()


def test_admin_reads_and_updates_a_system_by_code_and_the_secret_is_write_only(admin_api):
    response = admin_api.patch(
        "/api/v1/systems/MES",
        {"replay_url": "https://mes.plant.example/replay", "replay_auth_value": "Bearer s3cret"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["replay_url"] == "https://mes.plant.example/replay"
    assert response.json()["has_replay_secret"] is True
    assert "s3cret" not in response.content.decode()
    mes = System.objects.get(code="MES")
    assert mes.replay_auth_value == "Bearer s3cret"
    detail = admin_api.get("/api/v1/systems/MES")
    assert "s3cret" not in detail.content.decode()
    assert detail.json()["code"] == "MES"


def test_admin_creates_a_plant_and_bad_timezone_is_named(admin_api):
    bad = admin_api.post(
        "/api/v1/plants",
        {"code": "P300", "name": "Plant 300", "timezone": "Mars/Base"},
        format="json",
    )
    assert bad.status_code == 400
    assert "timezone" in bad.json()
    good = admin_api.post(
        "/api/v1/plants",
        {"code": "P300", "name": "Plant 300", "timezone": "America/Chicago"},
        format="json",
    )
    assert good.status_code == 201
    shown = admin_api.get("/api/v1/plants/P300").json()
    assert {k: shown[k] for k in ("code", "name", "timezone", "retention_overrides")} == {
        "code": "P300",
        "name": "Plant 300",
        "timezone": "America/Chicago",
        "retention_overrides": {},
    }


def test_admin_creates_a_flow_with_milestones_and_bad_completion_is_refused(admin_api):
    body = {
        "code": "scrap_report",
        "name": "Scrap report",
        "milestones": ["reported", "posted"],
        "completing_milestones": ["booked"],
        "stuck_after_seconds": 900,
        "source_system": "MES",
        "target_systems": ["ERP"],
    }
    bad = admin_api.post("/api/v1/flows", body, format="json")
    assert bad.status_code == 400
    assert "completing_milestones" in bad.json()
    assert not Flow.objects.filter(code="scrap_report").exists()
    body["completing_milestones"] = ["posted"]
    created = admin_api.post("/api/v1/flows", body, format="json")
    assert created.status_code == 201, created.content
    flow = Flow.objects.get(code="scrap_report")
    assert flow.stuck_after.total_seconds() == 900
    assert admin_api.get("/api/v1/flows/scrap_report").json()["target_systems"] == ["ERP"]
    updated = admin_api.patch(
        "/api/v1/flows/scrap_report", {"stuck_after_seconds": 60}, format="json"
    )
    assert updated.json()["stuck_after_seconds"] == 60


def test_unknown_source_system_is_refused_naming_the_field(admin_api):
    response = admin_api.post(
        "/api/v1/flows",
        {
            "code": "f",
            "name": "F",
            "milestones": ["a"],
            "completing_milestones": ["a"],
            "source_system": "SAP",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "source_system" in response.json()


def test_admin_pages_list_the_catalog(client, alice):
    client.force_login(alice)
    for model in ("plant", "system", "flow", "apikey"):
        response = client.get(f"/admin/integration_hub/{model}/?q=a")
        assert response.status_code == 200
    system_page = client.get(
        f"/admin/integration_hub/system/{System.objects.get(code='ERP').pk}/change/"
    )
    assert b'name="replay_auth_value"' in system_page.content


def test_landing_page_lists_the_flows(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"order_release" in response.content
    assert b"released \xe2\x86\x92 received \xe2\x86\x92 acknowledged" in response.content


def test_a_stuck_after_beyond_ten_years_is_refused_naming_the_field(admin_api):
    """Found by schemathesis: a huge value overflowed timedelta (500)."""
    response = admin_api.post(
        "/api/v1/flows",
        {"code": "huge", "name": "Huge", "milestones": ["a"], "completing_milestones": ["a"],
         "stuck_after_seconds": 9638303094620932},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert "stuck_after_seconds" in response.json()
    assert not Flow.objects.filter(code="huge").exists()


def test_system_aliases_are_edited_in_the_system_admin(client, alice):
    client.force_login(alice)
    mes = System.objects.get(code="MES")
    page = client.get(f"/admin/integration_hub/system/{mes.pk}/change/")
    assert b"aliases-TOTAL_FORMS" in page.content
    SystemAlias.objects.create(system=mes, alias="mes-adapter")
    duplicate = SystemAlias(system=System.objects.get(code="ERP"), alias="mes-adapter")
    with pytest.raises(ValidationError):
        duplicate.full_clean()


def test_a_flow_names_its_fan_out_milestones_and_tolerance(admin_api):
    seeded = admin_api.get("/api/v1/flows/quality_hold").json()
    assert (seeded["fan_out_milestones"], seeded["reconcile_after_seconds"]) == (
        ["hold_propagated"],
        900,
    )
    bad = admin_api.patch(
        "/api/v1/flows/order_release", {"fan_out_milestones": ["shipped"]}, format="json"
    )
    assert bad.status_code == 400
    assert bad.json() == {"fan_out_milestones": ["Not milestones of this flow: shipped."]}
    assert Flow.objects.get(code="order_release").fan_out_milestones == []
    good = admin_api.patch(
        "/api/v1/flows/order_release",
        {"fan_out_milestones": ["received"], "reconcile_after_seconds": 120},
        format="json",
    )
    assert good.status_code == 200, good.content
    flow = Flow.objects.get(code="order_release")
    assert (flow.fan_out_milestones, flow.reconcile_after.total_seconds()) == (["received"], 120)


def test_admin_pages_show_reconciliation(client, alice):
    client.force_login(alice)
    for model in ("agreementrule", "reconciliationexception"):
        assert client.get(f"/admin/monitoring/{model}/?q=a").status_code == 200
    rules = client.get("/admin/monitoring/agreementrule/").content.decode()
    assert "A lot released in QMS is not still blocked in WMS" in rules


@pytest.mark.parametrize("method", ["patch", "put"])
@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_a_form_body_with_a_nul_is_a_400_naming_the_field_and_changes_nothing(
    admin_api, method, encoding
):
    """Django parses form bodies of POST only, so PATCH and PUT forms reach DRF's parsers: a NUL
    there (PostgreSQL cannot store one) is refused like anywhere else, not a 500."""
    from urllib.parse import urlencode

    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    fields = {"name": "Renamed", "target_systems": "WMS\x00", "code": "shipment_confirmation"}
    if encoding == "urlencoded":
        body, content_type = urlencode(fields), "application/x-www-form-urlencoded"
    else:
        body, content_type = encode_multipart(BOUNDARY, fields), MULTIPART_CONTENT
    url = "/api/v1/flows/shipment_confirmation"
    response = getattr(admin_api, method)(url, body, content_type=content_type)
    assert response.status_code == 400, response.content
    assert response.json() == {"target_systems": ["Must not contain NUL characters."]}
    assert Flow.objects.get(code="shipment_confirmation").name != "Renamed"
