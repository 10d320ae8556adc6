"""The Celery app: configured from Django settings (CELERY_*), tasks found in each capability."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "integration_hub.settings")

# Task modules: `<package>.tasks` of each of these (the only place, with the root urlconf, that
# names every layer). Code that enqueues looks a task up by name, so no module imports upward.
TASK_PACKAGES = [
    "integration_hub",
    "tracing.partitions",
    "monitoring.slo",
    "monitoring.replay",
    "monitoring.triage",
    "monitoring.reconciliation",
    "monitoring.alerts",
    "monitoring.retention",
]

app = Celery("integration_hub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(TASK_PACKAGES)
