from datetime import datetime

from celery import shared_task

from integration_hub.calendars import Calendar
from monitoring.slo import outcomes
from monitoring.slo.evaluation import run_evaluation
from tracing.transactions import stuck


@shared_task(name="monitoring.evaluate", ignore_result=True)
def evaluate():
    """Beat: mark stuck transactions, refresh rollups, store SLO status snapshots."""
    return run_evaluation()


@shared_task(name="monitoring.recompute_downtime", ignore_result=True)
def recompute_downtime(plant_id, start, end):
    """A planned downtime was added or removed: its span's SLO figures are recomputed."""
    start, end = datetime.fromisoformat(start), datetime.fromisoformat(end)
    stuck.restamp(plant_id, end, Calendar.everything())
    return outcomes.recompute_span(plant_id, start, end)
