from celery import shared_task

from monitoring.alerts import delivery, digest, lifecycle


@shared_task(name="monitoring.evaluate_alerts", ignore_result=True)
def evaluate_alerts():
    """Beat: evaluate alert rules; fire, repeat, resolve, and queue deliveries."""
    return lifecycle.evaluate_alerts()


@shared_task(name="monitoring.send_deliveries", ignore_result=True, acks_late=True)
def send_deliveries(delivery_ids):
    """Send alert deliveries by id; each is claimed in the database, so a repeat is harmless."""
    for delivery_id in delivery_ids:
        delivery.deliver(delivery_id)


@shared_task(name="monitoring.requeue_deliveries", ignore_result=True)
def requeue_deliveries():
    """Beat: re-enqueue deliveries whose worker died mid-send or whose message was lost."""
    return len(delivery.requeue_deliveries())


@shared_task(name="monitoring.send_shift_digests", ignore_result=True)
def send_shift_digests_task():
    """Beat: each plant's shift-change digest, once per shift end, to its email channels."""
    digest.send_shift_digests()
