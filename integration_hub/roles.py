"""Roles are groups: supervisor (reads their plants), analyst (also triages and replays dead
letters of their plants), admin (everything, configuration)."""

SUPERVISOR, ANALYST, ADMIN = "supervisor", "analyst", "admin"
ROLES = (SUPERVISOR, ANALYST, ADMIN)


TRIAGE_PERMISSION = "replay_deadletter"  # tracing.DeadLetter's: triage and replay


def _groups(user):
    if not hasattr(user, "_role_names"):
        user._role_names = (
            set(user.groups.values_list("name", flat=True)) if user.is_authenticated else set()
        )
    return user._role_names


def is_admin(user):
    """Integration admins configure everything (admin site, write APIs) and see every plant."""
    return sees_all_plants(user)


def sees_all_plants(user):
    """Admins (superusers, staff, or the admin group) see every plant."""
    return bool(
        user
        and user.is_authenticated
        and (user.is_superuser or user.is_staff or ADMIN in _groups(user))
    )


def can_triage(user):
    """Analysts and admins may act on dead letters; supervisors only read."""
    return bool(
        user
        and user.is_authenticated
        and (sees_all_plants(user) or user.has_perm(f"tracing.{TRIAGE_PERMISSION}"))
    )
