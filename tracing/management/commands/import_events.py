"""python manage.py import_events FILE|- : events from a JSON Lines or CSV file (README
"Importing files"). Exit status 1 when lines were rejected; their report is written beside
the file."""

import sys
from pathlib import Path

import orjson
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from tracing.ingest.files import BadHeader, detect_format, import_lines, open_text


class Command(BaseCommand):
    help = "Import trace events from a JSON Lines or CSV file ('-' reads standard input)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path of a .jsonl or .csv file, or - for stdin")
        parser.add_argument("--format", choices=["jsonl", "csv"], help="default: by extension")
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="events per ingest batch (1000)"
        )
        parser.add_argument("--report", help="where to write rejected lines (default: beside)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, file, format, batch_size, report, no_progress, **options):
        if not 1 <= batch_size <= settings.INGEST_MAX_EVENTS:
            raise CommandError(f"--batch-size must be 1-{settings.INGEST_MAX_EVENTS}.")
        if file == "-":
            stream, total, name = sys.stdin, None, "stdin"
            report_path = Path(report or "stdin.rejected.jsonl")
        else:
            path = Path(file)
            try:
                stream = open_text(path)
            except OSError as exc:
                raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
            with open_text(path) as counting:
                total = sum(1 for _ in counting)
            name, report_path = path.name, Path(report or f"{path}.rejected.jsonl")
        first = stream.readline()
        fmt = format or detect_format(name, first)
        lines = _chain(first, stream)
        bar = tqdm(total=total, unit=" lines", desc=name, file=self.stderr._out,
                   disable=no_progress, mininterval=0.5)  # fmt: skip
        try:
            result = import_lines(lines, fmt=fmt, batch_size=batch_size, progress=bar.update)
        except BadHeader as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
            if stream is not sys.stdin:
                stream.close()
        self.stdout.write(
            f"{name}: accepted {result.accepted}, duplicates {result.duplicates}, "
            f"rejected {len(result.rejected)}"
        )
        if not result.rejected:
            report_path.unlink(missing_ok=True)  # a report of an earlier run no longer holds
            return
        with report_path.open("wb") as out:
            for item in result.rejected:
                out.write(orjson.dumps(item) + b"\n")
        raise CommandError(
            f"{len(result.rejected)} line(s) rejected; line numbers and field errors in "
            f"{report_path}",
            returncode=1,
        )


def _chain(first, stream):
    if first:
        yield first
    yield from stream
