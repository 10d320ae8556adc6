"""The agreement rules a plant expects out of the box, and the default reconciliation SLO."""

from datetime import timedelta

from django.db import migrations

# slug, name, key, (when flow, milestone, system), (then flow, milestone, system), minutes
RULES = [
    ("lot-release-reaches-wms", "A lot released in QMS is not still blocked in WMS", "lot",
     ("quality_hold", "released", "QMS"), ("quality_hold", "released", "WMS"), 15),
    ("lot-scrap-reaches-wms", "A lot scrapped in QMS is blocked for good in WMS", "lot",
     ("quality_hold", "scrapped", "QMS"), ("quality_hold", "scrapped", "WMS"), 15),
    ("shipped-order-has-goods-receipt", "An order shipped by WMS has its goods receipt posted "
     "in ERP", "order", ("shipment_confirmation", "shipped", "WMS"),
     ("goods_receipt", "posted", "ERP"), 30),
    ("consumption-for-acknowledged-order", "Material is consumed only for orders MES "
     "acknowledged", "order", ("material_consumption", "posted", "ERP"),
     ("order_release", "acknowledged", "MES"), 15),
]  # fmt: skip


def seed(apps, schema_editor):
    AgreementRule = apps.get_model("monitoring", "AgreementRule")
    SLO = apps.get_model("monitoring", "SLO")
    Flow = apps.get_model("integration_hub", "Flow")
    System = apps.get_model("integration_hub", "System")
    flows = {f.code: f for f in Flow.objects.all()}
    systems = {s.code: s for s in System.objects.all()}
    for slug, name, key, when, then, minutes in RULES:
        if when[0] not in flows or then[0] not in flows:
            continue
        AgreementRule.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "key": key,
                "when_flow": flows[when[0]],
                "when_milestone": when[1],
                "when_system": systems.get(when[2]),
                "then_flow": flows[then[0]],
                "then_milestone": then[1],
                "then_system": systems.get(then[2]),
                "within": timedelta(minutes=minutes),
            },
        )
    SLO.objects.get_or_create(
        slug="reconciliation-exceptions",
        defaults={
            "name": "Systems in agreement",
            "kind": "age",
            "subject": "reconciliation",
            "threshold_seconds": 3600,
            "objective": 0.95,
            "description": "Every system a hold, consumption or order reaches agrees within an "
            "hour: reconciliation exceptions close within 1 h of the first system's event.",
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0009_reconciliation"),
        ("integration_hub", "0008_flow_fan_out"),
    ]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
