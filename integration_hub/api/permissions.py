"""Permissions the API views share."""

from rest_framework import permissions


class ReadOrAdmin(permissions.BasePermission):
    """People read; only admins change definitions."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in permissions.SAFE_METHODS or user.is_staff
