import time

from django.core.management.base import BaseCommand

from monitoring.retention.run import apply_retention


class Command(BaseCommand):
    help = (
        "Purge what each kind's retention (RETENTION_*_DAYS, or the plant's own) no longer "
        "keeps, in batches (on PostgreSQL expired event partitions are dropped whole); "
        "--dry-run only counts. Beat runs this daily."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count, remove nothing.")
        parser.add_argument("--batch-size", type=int, default=None, help="Rows per batch.")

    def handle(self, *args, dry_run=False, batch_size=None, **options):
        started = time.monotonic()
        verb = "would remove" if dry_run else "removed"

        def progress(purge, done, total):
            if dry_run or done == total:
                self.stdout.write(f"{purge.label}: {verb} {done:,}")
            else:
                elapsed = time.monotonic() - started
                self.stderr.write(f"{purge.label}: {done:,} of {total:,} ({elapsed:.0f} s)")

        def note(purge, text):
            self.stdout.write(f"{purge.label}: {text}")

        if batch_size is not None and batch_size < 1:
            self.stderr.write("--batch-size must be at least 1")
            raise SystemExit(2)
        counts = apply_retention(
            dry_run=dry_run, batch_size=batch_size, progress=progress, note=note
        )
        total = sum(counts.values())
        self.stdout.write(
            f"{'dry run: ' if dry_run else ''}{verb} {total:,} rows "
            f"in {time.monotonic() - started:.1f} s"
        )
