from celery import shared_task

from monitoring.evaluation import run_evaluation


@shared_task(name="monitoring.evaluate", ignore_result=True)
def evaluate():
    """Beat: mark stuck transactions, refresh rollups, store SLO status snapshots."""
    return run_evaluation()


@shared_task(name="monitoring.evaluate_alerts", ignore_result=True)
def evaluate_alerts():
    """Beat: evaluate alert rules; fire, repeat, resolve, and queue deliveries."""
    from monitoring.alerts import evaluate_alerts as run

    return run()


@shared_task(name="monitoring.send_deliveries", ignore_result=True, acks_late=True)
def send_deliveries(delivery_ids):
    """Send alert deliveries by id; each is claimed in the database, so a repeat is harmless."""
    from monitoring.alerts import deliver

    for delivery_id in delivery_ids:
        deliver(delivery_id)


@shared_task(name="monitoring.requeue_deliveries", ignore_result=True)
def requeue_deliveries():
    """Beat: re-enqueue deliveries whose worker died mid-send or whose message was lost."""
    from monitoring.alerts import requeue_deliveries as run

    return len(run())
