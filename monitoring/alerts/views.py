"""The alert history page: what fired, when, what was sent to whom, and the outcome."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone

from integration_hub.models import Plant
from monitoring.alerts.api.views import rules_for, visible_alerts
from monitoring.models import Alert, Severity


@login_required
def alert_history(request):
    """Firing alerts first, then the past, newest first; filter by state, plant, severity."""
    params = request.GET
    values = {name: params.get(name, "").strip() for name in ("state", "plant", "severity", "id")}
    alerts = visible_alerts(request.user)
    if values["id"].isdigit():
        alerts = alerts.filter(pk=int(values["id"]))
    if values["state"] in Alert.State.values:
        alerts = alerts.filter(state=values["state"])
    if values["plant"]:
        alerts = alerts.filter(plant__code=values["plant"])
    if values["severity"] in Severity.values:
        alerts = alerts.filter(severity=values["severity"])
    page = Paginator(alerts.order_by("state", "-fired_at", "-id"), 50).get_page(params.get("page"))
    now = timezone.now()
    # Only the rules of the reader's plants (and those for every plant).
    muted = list(rules_for(request.user).filter(muted_until__gt=now).order_by("muted_until"))
    context = {
        "page": page,
        "values": values,
        "plants": Plant.objects.for_user(request.user),
        "states": Alert.State.choices,
        "severities": Severity.choices,
        "firing": visible_alerts(request.user).filter(state=Alert.State.FIRING).count(),
        "muted": muted,
        "now": now,
    }
    template = "alerts/partials/table.html" if request.htmx else "alerts/history.html"
    return render(request, template, context)
