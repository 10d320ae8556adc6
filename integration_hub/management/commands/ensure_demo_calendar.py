"""Shifts and planned downtime for the demo plants, so the dashboards show the stopped clock."""

from datetime import time, timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from integration_hub.calendars import recompute
from integration_hub.models import Downtime, Flow, Plant, Shift

SHIFTS = [
    ("Early", [0, 1, 2, 3, 4, 5], time(6), time(14)),
    ("Late", [0, 1, 2, 3, 4, 5], time(14), time(22)),
    ("Night", [6, 0, 1, 2, 3, 4], time(22), time(6)),
]


class Command(BaseCommand):
    help = "Give the demo plants three shifts and planned downtime around now (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--plants", default="P100,P200", help="Comma-separated plant codes.")

    def handle(self, *args, plants, **options):
        now = timezone.now().replace(second=0, microsecond=0)
        codes = [code.strip() for code in plants.split(",") if code.strip()]
        for plant in [Plant.objects.ensure(code) for code in codes]:
            for name, days, start, end in SHIFTS:
                Shift.objects.get_or_create(
                    plant=plant, name=name, defaults={"days": days, "start": start, "end": end}
                )
            if plant.downtimes.filter(end__gt=now - timedelta(hours=12)).exists():
                continue
            changeover = Downtime.objects.create(
                plant=plant,
                start=now - timedelta(hours=2),
                end=now - timedelta(hours=1, minutes=30),
                reason="Line 2 changeover (planned)",
            )
            stocktake = Downtime.objects.create(
                plant=plant,
                start=now + timedelta(minutes=10),
                end=now + timedelta(minutes=40),
                reason="Warehouse stocktake (planned)",
            )
            stocktake.flows.set(
                Flow.objects.filter(code__in=["goods_receipt", "inventory_movement"])
            )
            for row in (changeover, stocktake):
                recompute(row)
            self.stdout.write(f"{plant.code}: shifts and two planned downtimes")
