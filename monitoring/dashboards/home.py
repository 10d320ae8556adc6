"""The control room: every plant the person may see, one row each with its worst SLO status."""

from django.conf import settings
from django.shortcuts import render
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect

from integration_hub.models import Flow
from monitoring.dashboards import overview
from monitoring.dashboards.views import dead_letters_url, search_url
from tracing.transactions.charts import format_duration


def home(request):
    """All plants for a control room: one row each with its worst SLO status. Signed out, or
    before any plant is registered: what this hub watches and where to start."""
    if not request.user.is_authenticated:
        if request.htmx:  # a poll after the session expired: send the whole page to log in
            return HttpResponseClientRedirect(f"{settings.LOGIN_URL}?next=/")
        return render(request, "home.html", {"flows": Flow.objects.all(), "rows": None})
    now = timezone.now()
    rows = overview.plant_rows(request.user, now)
    for row in rows:
        row.stuck_url = search_url(row.plant, state="stuck")
        row.letters_url = dead_letters_url(row.plant)
        if row.last_seen:
            row.last_seen_local = row.last_seen.astimezone(row.plant.tzinfo)
            row.last_seen_ago = format_duration(now - row.last_seen)
    context = {
        "rows": rows,
        "now": now,
        "evaluated_at": max((r.evaluated_at for r in rows if r.evaluated_at), default=None),
        "counts": {
            state: sum(1 for r in rows if r.state == state) for state in ("breaching", "warning")
        },
        "refresh": settings.DASHBOARD_REFRESH_SECONDS,
        "flows": Flow.objects.all() if not rows else None,
    }
    template = "monitoring/partials/plants_live.html" if request.htmx else "home.html"
    return render(request, template, context)
