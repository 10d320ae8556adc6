from django.core.management.base import BaseCommand

from monitoring.alerts.delivery import deliver
from monitoring.alerts.lifecycle import evaluate_alerts
from monitoring.models import Delivery


class Command(BaseCommand):
    help = "Evaluate alert rules once now (what beat does every ALERT_EVALUATION_SECONDS)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--send",
            action="store_true",
            help="Also send the queued deliveries in this process instead of leaving them "
            "to a worker.",
        )

    def handle(self, *args, send, **options):
        result = evaluate_alerts()
        self.stdout.write(
            "fired {fired}, repeated {repeated}, resolved {resolved}, holding {held}; "
            "{deliveries} deliveries queued".format(**result)
        )
        if send:
            for pk in Delivery.objects.filter(state="pending").values_list("id", flat=True):
                self.stdout.write(f"delivery {pk}: {deliver(pk)}")
