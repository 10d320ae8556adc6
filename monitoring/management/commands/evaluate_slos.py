import json

from django.core.management.base import BaseCommand

from monitoring.models import SLOStatus
from monitoring.slo.evaluation import run_evaluation


class Command(BaseCommand):
    help = "Run one SLO evaluation now (what beat runs every 30 s) and print the statuses."

    def handle(self, *args, **options):
        summary = run_evaluation()
        for status in SLOStatus.objects.select_related("slo", "plant").order_by(
            "slo_id", "plant__code"
        ):
            scope = status.plant.code if status.plant else "all plants"
            attainment = "—" if status.attainment is None else f"{status.attainment:.2%}"
            self.stdout.write(
                f"{status.slo.name:<32} {scope:<10} {attainment:>8} of {status.slo.objective:.1%}"
                f"  {status.good}/{status.total}  budget left {status.error_budget_remaining:.0%}"
                f"  burn 1h {status.burn_rates.get('1h', 0):g}  {status.status}"
            )
        self.stdout.write(json.dumps(summary))
