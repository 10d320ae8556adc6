from django.apps import AppConfig
from django.db.models.signals import post_migrate

from integration_hub.roles import ADMIN


def grant_admin_everything(using="default", **kwargs):
    """The admin role may do everything: give its group every permission, including those of
    models added after the migration that created the roles (runs after each app migrates,
    once Django has created that app's permissions)."""
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.using(using).filter(name=ADMIN).first()
    if group is not None:
        group.permissions.set(Permission.objects.using(using).all())


class IntegrationHubConfig(AppConfig):
    name = "integration_hub"
    verbose_name = "Integration catalog"

    def ready(self):
        post_migrate.connect(grant_admin_everything, dispatch_uid="grant_admin_everything")
