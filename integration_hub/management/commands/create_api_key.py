from django.core.management.base import BaseCommand, CommandError

from integration_hub.models import ApiKey, Plant, System


def _lookup(model, codes, option):
    found = {obj.code: obj for obj in model.objects.filter(code__in=codes)}
    missing = [code for code in codes if code not in found]
    if missing:
        valid = ", ".join(model.objects.values_list("code", flat=True)) or "none registered"
        raise CommandError(f"--{option}: unknown {', '.join(missing)} (valid: {valid})")
    return list(found.values())


class Command(BaseCommand):
    help = "Create a reporter API key; prints the key alone on the last line (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who reports with this key, e.g. 'MES P100 adapter'.")
        parser.add_argument(
            "--system", action="append", default=[], help="Limit to a source system."
        )
        parser.add_argument("--plant", action="append", default=[], help="Limit to a plant.")

    def handle(self, *args, name, system, plant, **options):
        systems = _lookup(System, system, "system")
        plants = _lookup(Plant, plant, "plant")
        key, raw = ApiKey.issue(name, systems=systems, plants=plants)
        scope = ", ".join(
            [f"systems {', '.join(s.code for s in systems)}" if systems else "any system"]
            + [f"plants {', '.join(p.code for p in plants)}" if plants else "any plant"]
        )
        self.stderr.write(
            f"API key {key.prefix}… for {name!r} ({scope}). Store it now: it is not shown again."
        )
        self.stdout.write(raw)
