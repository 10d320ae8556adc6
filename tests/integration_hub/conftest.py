"""Shared by the project tests: Django started in a fresh process with a given environment."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_django(env, code="import django; django.setup(); print('started')"):
    clean = {
        k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"}
    }
    clean["DEBUG"] = "1"  # what make test sets; a test may unset it (None) or override it
    clean.update(env, DJANGO_SETTINGS_MODULE="integration_hub.settings")
    clean = {k: v for k, v in clean.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
