from django.contrib import admin, messages

from monitoring.alerts.api.views import rotate_secret
from monitoring.alerts.channels.webhook import new_secret
from monitoring.alerts.delivery import queue_test_delivery
from monitoring.models import (
    SLO,
    AgreementRule,
    Alert,
    AlertChannel,
    AlertRule,
    AlertTransition,
    Delivery,
    OwnerRule,
    ReconciliationException,
    SLOStatus,
    SLOThreshold,
    StuckSummary,
)


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


# --- Alerts ---------------------------------------------------------------------------------


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "severity", "plant", "flow", "enabled", "muted_until"]
    list_filter = ["kind", "severity", "enabled", "plant", "flow"]
    search_fields = ["name", "mute_reason"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "enabled", "severity"]}),
        ("Scope", {"fields": ["plant", "flow", "system", "slo"]}),
        ("Thresholds", {"fields": ["threshold_count", "threshold_seconds"]}),
        ("Notifying", {"fields": ["repeat_interval_seconds", "resolve_after_seconds"]}),
        ("Mute", {"fields": ["muted_until", "mute_reason"]}),
    ]


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "target", "min_severity", "enabled"]
    list_filter = ["kind", "enabled", "min_severity"]
    search_fields = ["name", "url"]
    filter_horizontal = ["plants", "flows"]
    # The signing secret is never shown back; "rotate secret" shows a new one once.
    exclude = ["secret", "previous_secret"]
    readonly_fields = ["previous_secret_until"]
    actions = ["send_test", "rotate_signing_secret"]

    @admin.display(description="Sends to")
    def target(self, obj):
        return ", ".join(obj.recipients) if obj.kind == AlertChannel.Kind.EMAIL else obj.url

    def save_model(self, request, obj, form, change):
        fresh = obj.kind == AlertChannel.Kind.WEBHOOK and not obj.secret
        if fresh:
            obj.secret = new_secret()
        super().save_model(request, obj, form, change)
        if fresh:
            self.message_user(
                request,
                f"Signing secret for {obj.name} (shown once, store it now): {obj.secret}",
                messages.WARNING,
            )

    @admin.action(description="Send a test notice")
    def send_test(self, request, queryset):
        for channel in queryset:
            queue_test_delivery(channel)
        self.message_user(
            request, f"Queued {queryset.count()} test notice(s); see Deliveries for the outcome."
        )

    @admin.action(description="Rotate the webhook signing secret")
    def rotate_signing_secret(self, request, queryset):
        for channel in queryset.filter(kind=AlertChannel.Kind.WEBHOOK):
            secret = rotate_secret(channel)
            self.message_user(
                request,
                f"New secret for {channel.name} (shown once; the old one signs for 24 h): {secret}",
                messages.WARNING,
            )


class TransitionInline(admin.TabularInline):
    model = AlertTransition
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "number", "at", "summary", "figures"]


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ["transition", "channel", "target", "state", "attempts", "last_error", "sent_at"]
    readonly_fields = fields


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["rule_name", "state", "severity", "plant", "flow", "fired_at", "resolved_at"]
    list_filter = ["state", "severity", "rule_kind", "plant"]
    search_fields = ["rule_name", "summary", "dedupe_key"]
    inlines = [TransitionInline, DeliveryInline]
    readonly_fields = [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["message_id", "channel", "transition", "state", "attempts", "created_at"]
    list_filter = ["state", "channel", "is_test"]
    search_fields = ["message_id", "target", "last_error"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(OwnerRule)
class OwnerRuleAdmin(admin.ModelAdmin):
    """Who owns new dead letters: the most specific enabled rule that matches wins."""

    list_display = ["name", "plant", "flow", "error_class", "target", "owner", "enabled"]
    list_filter = ["enabled", "plant", "flow", "error_class"]
    autocomplete_fields = ["owner"]


@admin.register(AgreementRule)
class AgreementRuleAdmin(admin.ModelAdmin):
    list_display = [
        "name", "slug", "key", "when_flow", "when_milestone", "when_system", "then_flow",
        "then_milestone", "then_system", "within", "plant", "enabled",
    ]  # fmt: skip
    list_filter = ["enabled", "when_flow", "then_flow", "plant"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(ReconciliationException)
class ReconciliationExceptionAdmin(admin.ModelAdmin):
    list_display = ["summary", "plant", "rule", "state", "since", "closed_at", "assignee"]
    list_filter = ["state", "kind", "plant", "flow"]
    search_fields = ["correlation_id", "summary", "rule"]
    readonly_fields = [
        "rule", "kind", "agreement", "plant", "flow", "transaction", "correlation_id",
        "business_keys", "milestone", "reached", "missing", "states", "summary", "since",
        "state", "opened_at", "closed_at", "closed_by_event", "updated_at",
    ]  # fmt: skip
