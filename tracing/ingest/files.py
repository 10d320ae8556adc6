"""Events from files that legacy batch interfaces leave: JSON Lines or CSV, read line by line,
sent through the same validation and pipeline as /api/v1/events, in batches.

CSV columns are named by the header (README "Importing files"): the event's own field names
(`event_id`, `correlation_id`, `flow`, `step`, `source`, `target`, `plant`, `status`,
`occurred_at`), `error_class`, `error_code`, `error_message`, `payload` and `attributes` (JSON
text), `business_key.<name>` and `attribute.<name>` (one key each). An empty cell is absent.
"""

import csv
from dataclasses import dataclass, field

from integration_hub import exact_json
from tracing.ingest.pipeline import ingest_events

PLAIN_COLUMNS = ("event_id", "correlation_id", "flow", "step", "source", "target", "plant",
                 "status", "occurred_at")  # fmt: skip
JSON_COLUMNS = ("payload", "attributes")
ERROR_COLUMNS = {"error_class": "class", "error_code": "code", "error_message": "message"}
PREFIXES = {"business_key.": "business_keys", "attribute.": "attributes"}


class BadHeader(ValueError):
    """A CSV header with a column this importer does not know (nothing is imported)."""


@dataclass
class ImportResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list = field(default_factory=list)  # {"line", "event_id", "errors"}


def detect_format(name, first_line):
    """'csv' or 'jsonl', by the file's extension, else by its first line."""
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "jsonl" if first_line.lstrip().startswith("{") else "csv"


def jsonl_records(lines):
    """(line number, event or None, errors) for each non-blank line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, exact_json.loads(line.encode("utf-8", "surrogatepass")), None
        except exact_json.JSONDecodeError as exc:
            yield number, None, {"line": [exact_json.describe(exc)]}
        except exact_json.TooDeep as exc:
            yield number, None, {"line": [str(exc)]}


def check_header(header):
    known = set(PLAIN_COLUMNS) | set(JSON_COLUMNS) | set(ERROR_COLUMNS)
    unknown = [
        name for name in header if name not in known and not name.startswith(tuple(PREFIXES))
    ]
    if unknown:
        raise BadHeader(
            f"Unknown CSV column(s) {', '.join(repr(n) for n in unknown)}; use "
            f"{', '.join(PLAIN_COLUMNS + JSON_COLUMNS + tuple(ERROR_COLUMNS))}, "
            "business_key.<name> or attribute.<name>."
        )


def csv_row_event(row):
    """One CSV row as an event object, or (None, errors) when a JSON cell is malformed."""
    event, errors = {}, {}
    for name, cell in row.items():
        if name is None or cell is None or cell == "":
            continue
        if name in PLAIN_COLUMNS:
            event[name] = cell
        elif name in ERROR_COLUMNS:
            event.setdefault("error", {})[ERROR_COLUMNS[name]] = cell
        elif name in JSON_COLUMNS:
            try:
                event[name] = exact_json.loads(cell.encode())
            except (exact_json.JSONDecodeError, exact_json.TooDeep) as exc:
                errors[name] = [f"Not JSON: {exc}."]
        else:
            prefix = next(p for p in PREFIXES if name.startswith(p))
            event.setdefault(PREFIXES[prefix], {})[name[len(prefix) :]] = cell
    if None in row:
        errors["line"] = [f"{len(row[None])} more cells than the header has columns."]
    return (None, errors) if errors else (event, None)


def csv_records(lines):
    """(line number, event or None, errors) for each CSV row after the header."""
    reader = csv.DictReader(lines)
    if reader.fieldnames is None:
        return
    check_header(reader.fieldnames)
    for row in reader:
        event, errors = csv_row_event(row)
        yield reader.line_num, event, errors


def import_lines(lines, *, fmt, batch_size=1000, progress=None):
    """Validate and ingest the events of an iterable of text lines, batch by batch.

    Guarantees: every line's event is stored once whatever the number of runs (event_id is
    the idempotency key); every rejected line is reported with its number and field errors.
    `progress(n)` is called with the number of lines each batch covered.
    """
    records = csv_records(lines) if fmt == "csv" else jsonl_records(lines)
    result, batch = ImportResult(), []
    reported = number = 0
    for number, event, errors in records:
        if errors:
            result.rejected.append({"line": number, "event_id": None, "errors": errors})
        else:
            batch.append((number, event))
        if len(batch) >= batch_size:
            _send(batch, result)
            batch, reported = [], _report(progress, reported, number)
    if batch:
        _send(batch, result)
    _report(progress, reported, number)
    result.rejected.sort(key=lambda item: item["line"])
    return result


def _report(progress, reported, number):
    if progress is not None and number > reported:
        progress(number - reported)
    return number


def _send(batch, result):
    outcome = ingest_events([event for _, event in batch])
    result.accepted += outcome.accepted
    result.duplicates += outcome.duplicates
    for item in outcome.rejected:
        line = batch[item["index"]][0]
        result.rejected.append({"line": line, "event_id": item["event_id"],
                                "errors": item["errors"]})  # fmt: skip


def open_text(path):
    """A file's lines as text (UTF-8, BOM tolerated), newline-preserving for csv."""
    return open(path, encoding="utf-8-sig", newline="")
