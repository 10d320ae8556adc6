"""Seeds the systems ERP, MES, WMS, QMS, MW (and HUB, the source of replay events) and the
seven default flows of DESIGN.md."""

from datetime import timedelta

from django.db import migrations

SYSTEMS = [
    ("ERP", "Enterprise resource planning", "erp"),
    ("MES", "Manufacturing execution", "mes"),
    ("WMS", "Warehouse management", "wms"),
    ("QMS", "Quality management", "qms"),
    ("MW", "Integration middleware", "middleware"),
    ("HUB", "Integration hub (replays)", "hub"),
]

# code, name, milestones, completing, stuck after, source, targets
FLOWS = [
    (
        "order_release",
        "Order release",
        ["released", "received", "acknowledged"],
        ["acknowledged"],
        timedelta(minutes=30),
        "ERP",
        ["MES"],
    ),
    (
        "material_consumption",
        "Material consumption",
        ["consumed", "posted"],
        ["posted"],
        timedelta(hours=1),
        "MES",
        ["ERP", "WMS"],
    ),
    (
        "production_confirmation",
        "Production confirmation",
        ["confirmed", "posted"],
        ["posted"],
        timedelta(hours=1),
        "MES",
        ["ERP"],
    ),
    (
        "goods_receipt",
        "Goods receipt",
        ["completed", "received", "posted"],
        ["posted"],
        timedelta(hours=2),
        "MES",
        ["ERP", "WMS"],
    ),
    (
        "inventory_movement",
        "Inventory movement",
        ["moved", "posted"],
        ["posted"],
        timedelta(hours=1),
        "WMS",
        ["ERP", "MES"],
    ),
    (
        "quality_hold",
        "Quality hold",
        ["hold_applied", "hold_propagated", "released", "scrapped"],
        ["released", "scrapped"],
        timedelta(hours=4),
        "QMS",
        ["ERP", "MES", "WMS"],
    ),
    (
        "shipment_confirmation",
        "Shipment confirmation",
        ["shipped", "posted"],
        ["posted"],
        timedelta(hours=2),
        "WMS",
        ["ERP"],
    ),
]
# A production order's journey runs in this order; a bulk replay follows it.
POSITIONS = {
    "order_release": 10,
    "material_consumption": 20,
    "production_confirmation": 30,
    "goods_receipt": 40,
    "quality_hold": 50,
    "inventory_movement": 60,
    "shipment_confirmation": 70,
}


def seed(apps, schema_editor):
    System = apps.get_model("integration_hub", "System")
    Flow = apps.get_model("integration_hub", "Flow")
    systems = {}
    for code, name, kind in SYSTEMS:
        systems[code], _ = System.objects.get_or_create(
            code=code, defaults={"name": name, "kind": kind}
        )
    for code, name, milestones, done, stuck, source, targets in FLOWS:
        flow, created = Flow.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "milestones": milestones,
                "completing_milestones": done,
                "stuck_after": stuck,
                "source_system": systems[source],
                "position": POSITIONS[code],
            },
        )
        if created:
            flow.target_systems.set([systems[t] for t in targets])


class Migration(migrations.Migration):
    dependencies = [("integration_hub", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
