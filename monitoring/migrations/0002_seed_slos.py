"""Seeds the default SLOs of DESIGN.md."""

from django.db import migrations

# slug, name, kind, subject, flow, start, ends, threshold s, objective, description
DEFAULTS = [
    ("order-release-latency", "Order release latency", "latency", "transactions", "order_release",
     "released", ["acknowledged"], 60, 0.99,
     "Production orders released by ERP are acknowledged by MES within 60 s."),
    ("posting-delay", "Confirmation posting delay", "latency", "transactions",
     "production_confirmation", "confirmed", ["posted"], 300, 0.95,
     "Production confirmations from MES are posted in ERP within 5 minutes."),
    ("shipment-posting-delay", "Shipment posting delay", "latency", "transactions",
     "shipment_confirmation", "shipped", ["posted"], 600, 0.95,
     "Shipments confirmed by WMS are posted in ERP within 10 minutes."),
    ("confirmation-success", "Confirmation success", "success", "transactions",
     "production_confirmation", "", [], None, 0.995,
     "Production confirmations complete without a failure."),
    ("stuck-quality-holds", "Stuck quality holds", "age", "transactions", "quality_hold",
     "hold_applied", ["released", "scrapped"], 4 * 3600, 0.95,
     "Quality holds are released or scrapped within 4 hours."),
    ("exception-aging", "Exception aging", "age", "dead_letters", None, "", [], 24 * 3600, 0.95,
     "Dead letters are replayed, resolved or discarded within 24 hours."),
]  # fmt: skip


def seed(apps, schema_editor):
    SLO = apps.get_model("monitoring", "SLO")
    Flow = apps.get_model("integration_hub", "Flow")
    for slug, name, kind, subject, flow, start, ends, threshold, objective, text in DEFAULTS:
        SLO.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "kind": kind,
                "subject": subject,
                "flow": Flow.objects.get(code=flow) if flow else None,
                "start_milestone": start,
                "end_milestones": ends,
                "threshold_seconds": threshold,
                "objective": objective,
                "description": text,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial"), ("integration_hub", "0002_seed_catalog")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
