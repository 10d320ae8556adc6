from celery import shared_task

from tracing.partitions.ensure import ensure_partitions as ensure


@shared_task(name="tracing.ensure_partitions", ignore_result=True)
def ensure_partitions():
    """Beat, hourly: the event partitions of the coming periods exist (PostgreSQL)."""
    return [str(created) for created in ensure()]
