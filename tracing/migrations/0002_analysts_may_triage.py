"""Analysts may triage and replay dead letters: the analyst role gets `replay_deadletter`."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    # Permissions are normally created after migrate; create this app's now so it can be granted.
    app_config = apps.get_app_config("tracing")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    analyst, _ = Group.objects.get_or_create(name="analyst")
    analyst.permissions.add(
        Permission.objects.get(codename="replay_deadletter", content_type__app_label="tracing")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("tracing", "0001_initial"),
        ("integration_hub", "0003_roles"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
