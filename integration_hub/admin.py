from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from integration_hub.calendars import recompute
from integration_hub.models import (
    ApiKey,
    Downtime,
    Flow,
    Plant,
    PlantMembership,
    RetentionOverride,
    Shift,
    System,
    SystemAlias,
    WorkerHeartbeat,
)


class MembershipInline(admin.TabularInline):
    model = PlantMembership
    extra = 1
    autocomplete_fields = ["user"]


class ShiftInline(admin.TabularInline):
    model = Shift
    extra = 0


class DowntimeInline(admin.TabularInline):
    model = Downtime
    extra = 0
    fields = ["start", "end", "reason", "flows"]
    filter_horizontal = ["flows"]


class RetentionInline(admin.TabularInline):
    """The plant's own retention per kind of data, instead of the RETENTION_*_DAYS setting."""

    model = RetentionOverride
    extra = 0
    verbose_name = "retention override"


@admin.register(Plant)
class PlantAdmin(admin.ModelAdmin):
    inlines = [MembershipInline, ShiftInline, DowntimeInline, RetentionInline]
    list_display = ["code", "name", "timezone"]
    search_fields = ["code", "name"]
    list_filter = ["timezone"]

    def save_formset(self, request, form, formset, change):
        """Downtime added, changed or removed here recomputes the SLO figures of its span."""
        if formset.model is not Downtime:
            return super().save_formset(request, form, formset, change)
        # The span as it was (the form has already put the new values on the instance).
        before = {
            f.instance.pk: Downtime(
                plant_id=f.instance.plant_id, start=f.initial["start"], end=f.initial["end"]
            )
            for f in formset.initial_forms
            if f.instance.pk and f.has_changed()
        }
        saved = formset.save(commit=False)
        for row in formset.deleted_objects:
            recompute(row)
            row.delete()
        for row in saved:
            if row.created_by_id is None:
                row.created_by = request.user
            row.save()
            if row.pk in before:  # moved: the old span too
                old = Downtime(
                    plant_id=row.plant_id, start=before[row.pk][0], end=before[row.pk][1]
                )
                recompute(old)
            recompute(row)
        formset.save_m2m()


class SystemForm(forms.ModelForm):
    replay_auth_value = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        label="Replay auth header value",
        help_text="Write-only. Leave empty to keep the stored value; tick 'clear' to remove it.",
    )
    clear_replay_auth_value = forms.BooleanField(required=False, label="Clear stored auth value")

    class Meta:
        model = System
        fields = ["code", "name", "kind", "replay_url", "replay_auth_header"]

    def save(self, commit=True):
        system = super().save(commit=False)
        if self.cleaned_data.get("clear_replay_auth_value"):
            system.replay_auth_value = ""
        elif self.cleaned_data.get("replay_auth_value"):
            system.replay_auth_value = self.cleaned_data["replay_auth_value"]
        if commit:
            system.save()
        return system


class AliasInline(admin.TabularInline):
    model = SystemAlias
    extra = 1
    verbose_name = "alias (e.g. an OpenTelemetry service.name)"
    verbose_name_plural = "aliases (names it reports under, e.g. OpenTelemetry service.name)"


@admin.register(System)
class SystemAdmin(admin.ModelAdmin):
    form = SystemForm
    inlines = [AliasInline]
    list_display = ["code", "name", "kind", "replay_url", "has_replay_secret"]
    list_filter = ["kind"]
    search_fields = ["code", "name", "replay_url", "aliases__alias"]

    @admin.display(boolean=True, description="Replay secret set")
    def has_replay_secret(self, obj):
        return obj.has_replay_secret


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    list_display = [
        "code", "name", "milestone_path", "stuck_after", "fan_out", "source_system", "position",
    ]  # fmt: skip
    list_filter = ["source_system", "target_systems"]
    search_fields = ["code", "name", "description"]
    filter_horizontal = ["target_systems"]

    @admin.display(description="Milestones")
    def milestone_path(self, obj):
        return " → ".join(obj.milestones or [])

    @admin.display(description="Every target must reach")
    def fan_out(self, obj):
        return ", ".join(obj.fan_out_milestones or []) or "—"


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name", "prefix", "events_per_second", "burst", "created_at", "last_used_at",
        "revoked_at", "is_active",
    ]  # fmt: skip
    list_filter = ["systems", "plants", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    filter_horizontal = ["systems", "plants"]
    actions = ["revoke_keys"]

    @admin.display(boolean=True, description="Active")
    def is_active(self, obj):
        return obj.is_active

    def save_model(self, request, obj, form, change):
        if not change:
            raw = obj.set_new_key()
            messages.warning(
                request, f"New API key for {obj.name} (shown once, copy it now): {raw}"
            )
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "hostname", "at"]
