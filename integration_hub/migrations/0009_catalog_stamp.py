"""A token that database triggers renew on every write to the catalog tables and the planned
downtime, so processes can keep what they read of them until it changes (models.CatalogStamp)."""

from django.db import migrations, models

TABLES = (
    "integration_hub_plant",
    "integration_hub_system",
    "integration_hub_flow",
    "integration_hub_flow_target_systems",
    "integration_hub_downtime",
    "integration_hub_downtime_flows",
)
STAMP = "integration_hub_catalogstamp"


def install(apps, schema_editor):
    run = schema_editor.execute
    if schema_editor.connection.vendor == "postgresql":
        run(
            "CREATE FUNCTION integration_hub_catalog_changed() RETURNS trigger AS $$ BEGIN "
            f"INSERT INTO {STAMP} (id, token) VALUES (1, md5(random()::text || clock_timestamp())) "
            "ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token; RETURN NULL; END $$ "
            "LANGUAGE plpgsql"
        )
        for table in TABLES:
            run(
                f"CREATE TRIGGER {table}_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION integration_hub_catalog_changed()"
            )
    else:
        for table in TABLES:
            for op in ("INSERT", "UPDATE", "DELETE"):
                run(
                    f"CREATE TRIGGER {table}_stamp_{op.lower()} AFTER {op} ON {table} BEGIN "
                    f"INSERT INTO {STAMP} (id, token) VALUES (1, lower(hex(randomblob(16)))) "
                    "ON CONFLICT (id) DO UPDATE SET token = excluded.token; END"
                )
    run(f"INSERT INTO {STAMP} (id, token) VALUES (1, 'installed')")


def remove(apps, schema_editor):
    run = schema_editor.execute
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            run(f"DROP TRIGGER IF EXISTS {table}_stamp ON {table}")
        run("DROP FUNCTION IF EXISTS integration_hub_catalog_changed()")
    else:
        for table in TABLES:
            for op in ("insert", "update", "delete"):
                run(f"DROP TRIGGER IF EXISTS {table}_stamp_{op}")


class Migration(migrations.Migration):
    dependencies = [("integration_hub", "0008_flow_fan_out")]

    operations = [
        migrations.CreateModel(
            name="CatalogStamp",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("token", models.CharField(max_length=32)),
            ],
        ),
        migrations.RunPython(install, remove),
    ]
