from django.core.management.base import BaseCommand

from integration_hub.models import System

DEMO_SYSTEMS = ("ERP", "MES", "WMS", "QMS")


class Command(BaseCommand):
    help = "Point the demo systems' replay endpoints at the local replay receiver (if unset)."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8766")

    def handle(self, *args, base_url, **options):
        updated = 0
        for system in System.objects.filter(code__in=DEMO_SYSTEMS, replay_url=""):
            system.replay_url = f"{base_url}/{system.code.lower()}/replay"
            system.save(update_fields=["replay_url"])
            updated += 1
        self.stdout.write(f"Demo replay endpoints: {updated} set, to {base_url}/<system>/replay.")
