"""What every page may need to know about the person looking at it."""

from integration_hub.roles import is_admin


def roles(request):
    return {"is_hub_admin": is_admin(getattr(request, "user", None))}
