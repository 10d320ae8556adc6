"""Permissions the API views share."""

from rest_framework import permissions

from integration_hub.roles import is_admin


class IsHubAdmin(permissions.BasePermission):
    """Integration admins: superusers, staff, and members of the admin role."""

    def has_permission(self, request, view):
        return is_admin(request.user)


class ReadOrAdmin(permissions.BasePermission):
    """People read; only admins change definitions."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in permissions.SAFE_METHODS or is_admin(user)
