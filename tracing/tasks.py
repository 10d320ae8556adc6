from celery import shared_task

from tracing.stuck import mark_stuck


@shared_task(name="tracing.mark_stuck", ignore_result=True)
def mark_stuck_task():
    """Beat: mark open transactions past their deadline as stuck."""
    return mark_stuck()
