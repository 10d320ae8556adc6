import zoneinfo
from datetime import UTC, timedelta

import django.db.models.deletion
from django.db import migrations, models

HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def _ceil_hour(moment):
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + HOUR


def _day_span(moment, tz):
    """As monitoring.slo.rollups.day_span (copied: a migration must not follow later code)."""
    midnight = moment.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        _ceil_hour(midnight.astimezone(UTC)),
        _ceil_hour((midnight + DAY).astimezone(UTC)),
    )


def build_days(apps, schema_editor):
    """Day rollups of the hour rollups already stored, in each plant's zone."""
    Plant = apps.get_model("integration_hub", "Plant")
    HourRollup = apps.get_model("monitoring", "HourRollup")
    DayRollup = apps.get_model("monitoring", "DayRollup")
    for plant in Plant.objects.all():
        tz = zoneinfo.ZoneInfo(plant.timezone)
        days = {}
        hours = (
            HourRollup.objects.filter(plant=plant)
            .order_by("slo_id", "hour")
            .values_list("slo_id", "hour", "good", "total", "histogram")
        )
        for slo_id, hour, good, total, histogram in hours.iterator(chunk_size=5000):
            start, end = _day_span(hour, tz)
            row = days.get((slo_id, start))
            if row is None:
                row = days[(slo_id, start)] = DayRollup(
                    slo_id=slo_id, plant=plant, day=start, next_day=end, histogram={}
                )
            row.good += good
            row.total += total
            for bucket, count in histogram.items():
                row.histogram[bucket] = row.histogram.get(bucket, 0) + count
        DayRollup.objects.bulk_create(days.values(), batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("integration_hub", "0007_rate_limits_and_retention"),
        ("monitoring", "0006_shift_digests"),
    ]

    operations = [
        migrations.CreateModel(
            name="DayRollup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("good", models.PositiveIntegerField(default=0)),
                ("total", models.PositiveIntegerField(default=0)),
                ("histogram", models.JSONField(default=dict)),
                ("day", models.DateTimeField()),
                ("next_day", models.DateTimeField()),
                (
                    "plant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="integration_hub.plant",
                    ),
                ),
                (
                    "slo",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="monitoring.slo",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("slo", "plant", "day"), name="uniq_rollup_day")
                ],
            },
        ),
        migrations.RunPython(build_days, migrations.RunPython.noop),
    ]
