"""Installed instead of django.contrib.admin, so that admin.site is the HubAdminSite (kept apart
from admin_site.py, which imports models and so cannot load while apps are being set up)."""

from django.contrib.admin.apps import AdminConfig


class HubAdminConfig(AdminConfig):
    default_site = "integration_hub.admin_site.HubAdminSite"
