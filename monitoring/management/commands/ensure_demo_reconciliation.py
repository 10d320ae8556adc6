"""Demo tolerances for reconciliation: two minutes instead of 15, so that the holds the
simulator's history loses on the way to WMS show as exceptions soon after `make demo` starts."""

from datetime import timedelta

from django.core.management.base import BaseCommand

from integration_hub.models import Flow
from monitoring.models import AgreementRule

DEMO_TOLERANCE = timedelta(minutes=2)


class Command(BaseCommand):
    help = "Shorten reconciliation tolerances to two minutes for the demo (idempotent)."

    def handle(self, *args, **options):
        flows = [f for f in Flow.objects.all() if f.fan_out_milestones]
        for flow in flows:
            flow.reconcile_after = DEMO_TOLERANCE
            flow.save(update_fields=["reconcile_after"])
        rules = AgreementRule.objects.update(within=DEMO_TOLERANCE)
        self.stdout.write(
            f"Demo reconciliation: {len(flows)} fan-out flows and {rules} agreement rules "
            "allow 2 minutes"
        )
