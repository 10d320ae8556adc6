"""python manage.py import_events: JSON Lines and CSV through the same validation and
pipeline, batched, idempotent, with progress and a report of rejected lines."""

import io
import json
import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from tests.events import event, sample_events
from tracing.models import BusinessKey, TraceEvent, Transaction

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_events", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        code, err = exc.returncode, io.StringIO(err.getvalue() + str(exc))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def samples(tmp_path, p100, p200):
    path = tmp_path / "erp-export.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in sample_events(datetime.now(UTC))) + "\n")
    return path


def test_a_jsonl_file_is_stored_and_correlated_like_the_api(samples):
    code, out, _ = run(str(samples), "--batch-size", "5")
    assert code == 0
    assert out.strip() == "erp-export.jsonl: accepted 17, duplicates 0, rejected 0"
    assert TraceEvent.objects.count() == 17 and Transaction.objects.count() == 8
    assert Transaction.objects.get(correlation_id="PO-1000123").state == "completed"
    assert not (samples.parent / "erp-export.jsonl.rejected.jsonl").exists()


def test_re_running_the_import_stores_nothing_twice(samples):
    run(str(samples))
    code, out, _ = run(str(samples), "--batch-size", "4")
    assert code == 0 and "accepted 0, duplicates 17, rejected 0" in out
    assert TraceEvent.objects.count() == 17
    assert Transaction.objects.get(correlation_id="PO-1000123").event_count == 3


def test_progress_shows_lines_done_of_the_total(samples):
    _, _, err = run(str(samples), "--batch-size", "5")
    assert "erp-export.jsonl" in err and "17/17" in err and "lines" in err
    _, _, quiet = run(str(samples), "--no-progress")
    assert "17/17" not in quiet


def test_rejected_lines_are_reported_beside_the_file_and_the_exit_status_is_1(tmp_path, p100):
    path = tmp_path / "mes.jsonl"
    good = event("released")
    lines = [
        json.dumps(good),
        "",
        json.dumps(event("released", flow="order_relase")),
        '{"event_id": "x", ',
        json.dumps(event("received", occurred_at="yesterday")),
    ]
    path.write_text("\n".join(lines) + "\n")
    code, out, err = run(str(path))
    assert code == 1
    assert "accepted 1, duplicates 0, rejected 3" in out
    report_path = tmp_path / "mes.jsonl.rejected.jsonl"
    assert str(report_path) in err
    report = [json.loads(line) for line in report_path.read_text().splitlines()]
    assert [r["line"] for r in report] == [3, 4, 5]
    assert "Unknown flow 'order_relase'" in report[0]["errors"]["flow"][0]
    assert report[0]["event_id"] == json.loads(lines[2])["event_id"]
    assert report[1]["errors"]["line"][0].startswith("Malformed JSON")
    assert "occurred_at" in report[2]["errors"]
    assert TraceEvent.objects.get().event_id == good["event_id"]


def test_a_clean_re_run_removes_the_old_report(tmp_path, p100):
    path = tmp_path / "fix.jsonl"
    path.write_text(json.dumps(event(flow="nope")) + "\n")
    assert run(str(path))[0] == 1
    path.write_text(json.dumps(event()) + "\n")
    assert run(str(path))[0] == 0
    assert not (tmp_path / "fix.jsonl.rejected.jsonl").exists()


CSV = "\n".join(
    [
        "event_id,correlation_id,flow,step,source,target,plant,status,occurred_at,"
        "business_key.order,business_key.lot,attribute.batch_file,"
        "error_class,error_code,error_message,payload",
        "c-1,PO-7,order_release,released,ERP,MES,P100,,{at},7,L-1,night.csv,,,,",
        "c-2,PO-7,order_release,received,MES,,P100,failed,{at},7,,,"
        'master_data,MAT_UNKNOWN,Material M-77 unknown,"{{""order"": ""7""}}"',
        "c-3,PO-8,order_release,released,ERP,MES,P100,,{at},8,,,,,,{{not json",
        "",
    ]
)


def test_csv_columns_map_by_header_name(tmp_path, p100):
    at = (datetime.now(UTC) - timedelta(minutes=3)).isoformat()
    path = tmp_path / "legacy.csv"
    path.write_text(CSV.format(at=at))
    code, out, _ = run(str(path))
    assert code == 1 and "accepted 2, duplicates 0, rejected 1" in out
    first = TraceEvent.objects.get(event_id="c-1")
    assert first.business_keys == {"order": "7", "lot": "L-1"}
    assert first.attributes == {"batch_file": "night.csv"} and first.target.code == "MES"
    second = TraceEvent.objects.get(event_id="c-2")
    assert (second.status, second.error_class, second.error_code, second.error_message) == (
        "failed", "master_data", "MAT_UNKNOWN", "Material M-77 unknown",
    )  # fmt: skip
    assert second.payload == {"order": "7"}
    report = json.loads((tmp_path / "legacy.csv.rejected.jsonl").read_text())
    assert report["line"] == 4 and report["errors"]["payload"][0].startswith("Not JSON")
    assert set(BusinessKey.objects.values_list("value", flat=True)) == {"7", "L-1"}


def test_an_unknown_csv_column_stops_before_importing_anything(tmp_path, p100):
    path = tmp_path / "typo.csv"
    path.write_text("event_id,ocurred_at\nx,2026-01-01T00:00:00Z\n")
    code, _, err = run(str(path))
    assert code == 1 and "Unknown CSV column(s) 'ocurred_at'" in err
    assert TraceEvent.objects.count() == 0


def test_dash_reads_standard_input(monkeypatch, tmp_path, p100):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(event()) + "\n"))
    code, out, _ = run("-", "--no-progress")
    assert code == 0 and out.strip() == "stdin: accepted 1, duplicates 0, rejected 0"


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    code, _, err = run(str(tmp_path / "nope.jsonl"))
    assert code == 1 and "Cannot read" in err and "nope.jsonl" in err
