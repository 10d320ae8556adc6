from celery import shared_task

from monitoring.slo.evaluation import run_evaluation


@shared_task(name="monitoring.evaluate", ignore_result=True)
def evaluate():
    """Beat: mark stuck transactions, refresh rollups, store SLO status snapshots."""
    return run_evaluation()
