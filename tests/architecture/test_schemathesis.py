"""Schemathesis over the documented API, against a live hub with data: no answer is a 5xx,
and none contradicts the schema (status code, content type, headers, body)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.utils import timezone

from tests.conftest import token_client
from tests.events import dead_letter, event
from tracing.ingest.pipeline import ingest_events

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")  # fmt: skip
BUDGET_SECONDS = 60
# Revoking keys is tested on its own; here it would revoke the reporter key mid-run.
KEEP_KEY = ("--exclude-operation-id", "v1_api_keys_destroy",
            "--exclude-operation-id", "v1_api_keys_revoke_create")  # fmt: skip


def test_schemathesis_finds_no_5xx_and_no_contradiction(live_server, alice, p100, reporter_key,
                                                       tmp_path):  # fmt: skip
    ingest_events([event("released", correlation_id="PO-1"), event("released", plant="P100")])
    dead_letter("PO-2")
    token = token_client(alice)._credentials["HTTP_AUTHORIZATION"]
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run",
        f"{live_server.url}/api/schema/?format=json",
        "--checks", CHECKS, "--max-examples", os.environ.get("SCHEMATHESIS_EXAMPLES", "8"),
        "--workers", "1", "--seed", "15", "--no-shrink", "--generation-database", "none",
        "--phases", "examples,coverage,fuzzing", "--request-timeout", "30",
        "--max-time", str(BUDGET_SECONDS), *KEEP_KEY,
        "-H", f"Authorization: {token}", "-H", f"X-Api-Key: {reporter_key}",
        "--no-color", "--output-truncate", "false",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    started = time.monotonic()
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=BUDGET_SECONDS + 120, cwd=tmp_path
    )
    took = time.monotonic() - started
    summary = run.stdout[-6000:]
    (tmp_path / "schemathesis.txt").write_text(run.stdout)
    print(f"schemathesis ran {took:.0f} s at {timezone.now():%H:%M}:\n{summary}")
    assert run.returncode == 0, summary + run.stderr[-2000:]
