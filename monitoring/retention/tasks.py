from celery import shared_task

from monitoring.retention.run import apply_retention as run_retention


@shared_task(name="monitoring.apply_retention", ignore_result=True)
def apply_retention():
    """Beat, daily: purge what each kind's retention (per plant) no longer keeps."""
    return run_retention()
