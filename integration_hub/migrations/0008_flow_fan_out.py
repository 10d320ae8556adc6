"""Fan-out milestones: a quality hold reaches every target (ERP, MES, WMS) and a material
consumption is posted in ERP and WMS before either counts as reached."""

from datetime import timedelta

from django.db import migrations, models

FAN_OUT = {"quality_hold": ["hold_propagated"], "material_consumption": ["posted"]}


def seed(apps, schema_editor):
    Flow = apps.get_model("integration_hub", "Flow")
    for flow in Flow.objects.filter(code__in=FAN_OUT):
        if not flow.fan_out_milestones:
            flow.fan_out_milestones = FAN_OUT[flow.code]
            flow.save(update_fields=["fan_out_milestones"])


class Migration(migrations.Migration):
    dependencies = [("integration_hub", "0007_rate_limits_and_retention")]

    operations = [
        migrations.AddField(
            model_name="flow",
            name="fan_out_milestones",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Milestones every target system must reach (a quality hold reaches "
                "ERP, MES and WMS); until all have, the milestone is not reached.",
            ),
        ),
        migrations.AddField(
            model_name="flow",
            name="reconcile_after",
            field=models.DurationField(
                default=timedelta(minutes=15),
                help_text="How long a fan-out milestone may have reached some targets and not "
                "others before it is a reconciliation exception.",
            ),
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
