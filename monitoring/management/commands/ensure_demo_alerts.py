"""Alert rules and channels for the demo: console email and a local signed webhook."""

from django.conf import settings
from django.core.management.base import BaseCommand

from integration_hub.models import System
from monitoring.alerts.channels.webhook import new_secret
from monitoring.management.commands.webhook_receiver import DEFAULT_SECRET_FILE
from monitoring.models import AlertChannel, AlertRule

RULES = [
    {"name": "SLO fast burn (page)", "kind": "slo_fast_burn", "severity": "critical"},
    {"name": "SLO slow burn (ticket)", "kind": "slo_slow_burn", "severity": "warning"},
    {"name": "Transactions stuck", "kind": "stuck", "severity": "warning", "threshold_count": 5},
    {"name": "New dead-letter group", "kind": "dead_letter_new_group", "severity": "warning"},
    {"name": "Systems disagree", "kind": "reconciliation", "severity": "warning",
     "threshold_count": 0},
]  # fmt: skip


class Command(BaseCommand):
    help = "Create the demo's alert rules and channels if missing (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--webhook-url", default="http://127.0.0.1:8765/alerts")
        parser.add_argument("--email", default="plant-support@example.com")

    def handle(self, *args, webhook_url, email, **options):
        for rule in RULES:
            AlertRule.objects.get_or_create(name=rule["name"], defaults=rule)
        erp = System.objects.filter(code="ERP").first()
        if erp:
            AlertRule.objects.get_or_create(
                name="ERP silent",
                defaults={
                    "kind": "silence",
                    "severity": "critical",
                    "system": erp,
                    "threshold_seconds": 600,
                },
            )
        AlertChannel.objects.get_or_create(
            name="Demo mailbox (console)",
            defaults={"kind": "email", "recipients": [email], "min_severity": "warning"},
        )
        secret_path = settings.VAR_DIR / DEFAULT_SECRET_FILE
        hook, created = AlertChannel.objects.get_or_create(
            name="Demo webhook",
            defaults={"kind": "webhook", "url": webhook_url, "min_severity": "info"},
        )
        if created or not hook.secret or not secret_path.exists():
            hook.secret = new_secret()
            hook.save(update_fields=["secret"])
            secret_path.write_text(hook.secret + "\n")
            secret_path.chmod(0o600)
        self.stdout.write(
            f"Demo alerts ready: {AlertRule.objects.count()} rules; email to {email} (console), "
            f"webhook to {hook.url} (secret in {secret_path})."
        )
