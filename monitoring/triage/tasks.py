from celery import shared_task

from monitoring.triage.owners import assign_owners


@shared_task(name="monitoring.assign_owners", ignore_result=True)
def assign_owners_task():
    """Beat: new dead letters to their owners by owner rule; the owners are emailed."""
    assign_owners()
