"""Which plants a person may see; their role decides the rest (`integration_hub.roles`)."""

from integration_hub.models import Plant
from integration_hub.roles import sees_all_plants


def visible_plant_ids(user):
    return set(Plant.objects.for_user(user).values_list("id", flat=True))


def sees_overall_figures(user):
    """Figures across all plants are shown only to people who may see every plant."""
    return sees_all_plants(user) or visible_plant_ids(user) == set(
        Plant.objects.values_list("id", flat=True)
    )
