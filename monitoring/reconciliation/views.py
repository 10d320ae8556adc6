"""The reconciliation page: where systems disagree, open first, with a link to each transaction."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from integration_hub.models import Flow, Plant
from monitoring.models import ReconciliationException
from monitoring.reconciliation.selectors import InvalidFilter, exception_data, exceptions_for


@login_required
def reconciliation(request):
    try:
        qs, values = exceptions_for(request.user, request.GET)
        errors = {}
    except InvalidFilter as exc:
        qs, values, errors = ReconciliationException.objects.none(), request.GET, exc.errors
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "rows": [{**exception_data(e), "since_at": e.since, "tz": e.plant.tzinfo} for e in page],
        "values": values,
        "errors": errors,
        "plants": Plant.objects.for_user(request.user),
        "flows": Flow.objects.all(),
        "states": [("open", "Open"), ("closed", "Closed"), ("all", "All")],
    }
    status = 400 if errors else 200
    return render(request, "monitoring/reconciliation.html", context, status=status)
