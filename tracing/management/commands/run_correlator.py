"""python manage.py run_correlator: the process that folds queued events into transactions
when INGEST_CORRELATION=deferred (tracing/ingest/correlator.py)."""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from tracing.ingest import correlator
from tracing.ingest.backlog import backlog


class Command(BaseCommand):
    help = (
        "Fold the events that ingest queued (INGEST_CORRELATION=deferred) into their "
        "transactions, pass after pass, until stopped (SIGTERM or Ctrl-C). Prints the rate and "
        "the backlog every --report-seconds. --once folds what is queued now and exits."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="drain the queue, then exit")
        parser.add_argument("--batch", type=int, default=settings.CORRELATOR_BATCH)
        parser.add_argument("--report-seconds", type=float, default=10.0)

    def handle(self, *args, once=False, batch=1, report_seconds=10.0, **options):
        if batch < 1:
            self.stderr.write("--batch must be at least 1.")
            raise SystemExit(2)
        if settings.INGEST_CORRELATION != "deferred":
            self.stdout.write(
                "INGEST_CORRELATION is 'request': ingest folds events itself, so this only "
                "drains what an earlier deferred setup left queued."
            )
        if once:
            total = 0
            while (done := correlator.correlate_pending(limit=batch)).claimed:
                total += done.folded
                self.stdout.write(f"folded {total:,} events")
            queued, _ = backlog()
            self.stdout.write(f"Done: {total:,} events folded; {queued:,} queued now.")
            return
        stopping = []
        for stop_signal in (signal.SIGTERM, signal.SIGINT):  # finish the pass, then stop
            signal.signal(stop_signal, lambda *_: stopping.append(True))
        self.stdout.write(
            f"Correlator running: up to {batch:,} events a pass, "
            f"{settings.CORRELATOR_IDLE_SECONDS:g} s between passes once the queue is empty."
        )
        correlator.run(
            stop=lambda: bool(stopping),
            report=self._report,
            report_every=report_seconds,
            batch=batch,
            on_error=lambda exc: self.stderr.write(f"database unavailable, retrying: {exc}"),
        )
        self.stdout.write("Correlator stopped.")

    def _report(self, folded, seconds):
        queued, waited = backlog()
        self.stdout.write(
            f"folded {folded:,} events in {seconds:.0f} s ({folded / seconds:,.0f}/s); "
            f"{queued:,} queued, oldest waiting {waited:.1f} s"
        )
        self.stdout.flush()
