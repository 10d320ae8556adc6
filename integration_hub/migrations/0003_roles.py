"""Creates the role groups: supervisor, analyst, admin (everything).

What an analyst may do beyond reading is granted by the app that owns it (tracing's dead-letter
permission, in its own migration); the admin group gets every permission after each migrate
(`apps.grant_admin_everything`).
"""

from django.db import migrations


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ("supervisor", "analyst", "admin"):
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("integration_hub", "0002_seed_catalog"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
