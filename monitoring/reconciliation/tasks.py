from celery import shared_task

from monitoring.reconciliation.run import reconcile as run_reconcile


@shared_task(name="monitoring.reconcile", ignore_result=True)
def reconcile():
    """Beat: open, update and close reconciliation exceptions."""
    result = run_reconcile()
    return {"opened": len(result.opened), "closed": len(result.closed)}
