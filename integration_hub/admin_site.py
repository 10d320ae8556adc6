"""The admin site, open to integration admins: superusers, staff and the admin role."""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from integration_hub.roles import is_admin


class HubAdminLoginForm(AdminAuthenticationForm):
    def confirm_login_allowed(self, user):
        if not (user.is_active and is_admin(user)):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class HubAdminSite(admin.AdminSite):
    site_header = "Integration hub administration"
    login_form = HubAdminLoginForm

    def has_permission(self, request):
        return request.user.is_active and is_admin(request.user)
