from django.contrib import admin

from monitoring.models import SLO, SLOStatus, SLOThreshold, StuckSummary


class ThresholdInline(admin.TabularInline):
    model = SLOThreshold
    extra = 0


@admin.register(SLO)
class SLOAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "flow",
        "plant",
        "objective",
        "threshold_seconds",
        "window_days",
        "enabled",
    ]
    list_filter = ["kind", "subject", "flow", "plant", "enabled"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ThresholdInline]


@admin.register(SLOStatus)
class SLOStatusAdmin(admin.ModelAdmin):
    list_display = [
        "slo",
        "plant",
        "attainment",
        "error_budget_remaining",
        "status",
        "evaluated_at",
    ]
    list_filter = ["status", "slo", "plant"]

    def has_add_permission(self, request):
        return False


@admin.register(StuckSummary)
class StuckSummaryAdmin(admin.ModelAdmin):
    list_display = ["flow", "plant", "count", "oldest_since", "evaluated_at"]
    list_filter = ["flow", "plant"]

    def has_add_permission(self, request):
        return False
