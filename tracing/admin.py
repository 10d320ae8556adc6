from django.contrib import admin

from tracing.models import TraceEvent, Transaction


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    list_display = [
        "correlation_id",
        "flow",
        "plant",
        "state",
        "first_seen",
        "last_seen",
        "event_count",
    ]
    list_filter = ["state", "flow", "plant"]
    search_fields = ["correlation_id", "keys__value"]
    readonly_fields = [f.name for f in Transaction._meta.fields]
    show_full_result_count = False


@admin.register(TraceEvent)
class TraceEventAdmin(admin.ModelAdmin):
    list_display = [
        "event_id",
        "flow",
        "step",
        "status",
        "source",
        "plant",
        "occurred_at",
        "received_at",
    ]
    list_filter = ["status", "flow", "plant", "source"]
    search_fields = ["event_id", "correlation_id"]
    readonly_fields = [f.name for f in TraceEvent._meta.fields]
    show_full_result_count = False
