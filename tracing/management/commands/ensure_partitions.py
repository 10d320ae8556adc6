"""python manage.py ensure_partitions: what beat does hourly, by hand (PostgreSQL)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from tracing.partitions import tables
from tracing.partitions.ensure import ensure_partitions


class Command(BaseCommand):
    help = (
        "Create the trace event partitions of the coming periods (EVENT_PARTITION: day, week "
        "or month) and print them. Beat does this hourly; SQLite has no partitions."
    )

    def handle(self, *args, **options):
        if not tables.is_partitioned():
            self.stdout.write("Events are not partitioned here (SQLite): nothing to do.")
            return
        created = ensure_partitions()
        for item in created:
            self.stdout.write(str(item))
        last = tables.existing()[-1]
        self.stdout.write(
            f"{len(created)} created; {settings.EVENT_PARTITION} partitions exist through "
            f"{last.end:%Y-%m-%d}"
        )
