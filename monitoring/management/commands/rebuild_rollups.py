import time

from django.core.management.base import BaseCommand

from monitoring.slo import outcomes
from monitoring.slo.figures import evaluate_slos


class Command(BaseCommand):
    help = "Recompute every SLO outcome and rollup from transactions and dead letters."

    def handle(self, *args, **options):
        started = time.monotonic()

        def progress(done):
            self.stderr.write(f"\r{done:,} items ({time.monotonic() - started:.0f} s)", ending="")

        rows = outcomes.rebuild(progress=progress)
        evaluate_slos()
        self.stderr.write("")
        self.stdout.write(f"rebuilt {rows:,} rollup rows in {time.monotonic() - started:.1f} s")
