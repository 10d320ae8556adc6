"""Dashboard pages: plant overview, wall screen and one SLO; HTMX polls get the live partial."""

from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect

from integration_hub.models import Downtime
from monitoring.dashboards import charts, overview, tiles, windows
from monitoring.models import SLO, ReconciliationException
from tracing.models import timeline_url
from tracing.transactions.charts import format_duration

DEAD_LETTERS_URL = "/dead-letters/"  # the triage inbox (integration_hub), filtered by query


def dashboard_login_required(view):
    """login_required that also works for HTMX polls: an expired session sends the whole page
    to the login form instead of swapping the login form into a panel."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if request.htmx:
            next_url = request.htmx.current_url_abs_path or request.get_full_path()
            login = f"{settings.LOGIN_URL}?{urlencode({'next': next_url})}"
            return HttpResponseClientRedirect(login)
        return redirect_to_login(request.get_full_path())

    return wrapper


def refused(request, exc):
    """403 with a page that says why and where to go instead (never the plant's data)."""
    return render(request, "monitoring/forbidden.html", {"reason": str(exc)}, status=403)


def theme_of(request):
    return "dark" if request.COOKIES.get("theme") == "dark" else "light"


def refresh_seconds():
    return settings.DASHBOARD_REFRESH_SECONDS


# ── Links to the lists behind the numbers ──────────────────────────────────────────────────


def search_url(plant, **filters):
    query = {"plant": plant.code, **{k: v for k, v in filters.items() if v}}
    return f"{reverse('transaction-search')}?{urlencode(query)}"


def reconciliation_url(plant):
    return f"{reverse('reconciliation')}?{urlencode({'plant': plant.code})}"


def dead_letters_url(plant, error_class=None):
    query = {"plant": plant.code}
    if error_class:
        query["error_class"] = error_class
    return f"{DEAD_LETTERS_URL}?{urlencode(query)}"


def slo_url(plant, slo, window=None):
    url = reverse("plant-slo", args=[plant.code, slo.slug])
    return f"{url}?{urlencode(window.query)}" if window and window.key != "24h" else url


def _iso_local(moment, tz):
    return moment.astimezone(tz).isoformat(timespec="seconds")


# ── Plant overview ─────────────────────────────────────────────────────────────────────────


def overview_context(request, plant, window, now):
    """Everything the live part of the overview and the wall screen show."""
    tz = plant.tzinfo
    slos = tiles.slos_for_plant(plant)
    shown = tiles.slo_tiles(plant, window, slos)
    for tile in shown:
        dress_tile(tile, plant, window)
    since = _iso_local(window.since, tz)
    until = _iso_local(window.until, tz) if window.key == "custom" else None
    today = _iso_local(windows.start_of_day(now, tz), tz)
    flows = overview.flow_rows(plant, window, now, slos)
    for row in flows:
        code = row.flow.code
        row.links = {
            "in_flight": search_url(plant, flow=code, state="in_flight"),
            "completed_today": search_url(plant, flow=code, state="completed", **{"from": today}),
            "failed": search_url(plant, flow=code, state="failed", **{"from": since, "to": until}),
            "stuck": search_url(plant, flow=code, state="stuck"),
            "oldest_stuck": timeline_url(code, row.oldest_stuck_id, plant.code)
            if row.oldest_stuck_id
            else None,
            "p95": slo_url(plant, row.latency_slo, window) if row.latency_slo else None,
        }
        row.oldest_stuck_age = (
            format_duration(now - row.oldest_stuck_since) if row.oldest_stuck_since else None
        )
        row.p95_text = charts.format_seconds(row.p95) if row.p95 is not None else None
        row.p95_breaches = bool(
            row.p95 is not None
            and row.latency_slo
            and row.latency_slo.threshold_seconds
            and row.p95 > row.latency_slo.threshold_seconds
        )
    holds = [_hold(txn, plant, now) for txn in overview.stuck_holds(plant, now)]
    hold_row = next((r for r in flows if r.flow.code == overview.HOLD_FLOW), None)
    letters = overview.dead_letters_by_class(plant)
    for group in letters:
        group["url"] = dead_letters_url(plant, group["error_class"])
        group["label"] = group["error_class"].replace("_", " ")
        group["age"] = format_duration(now - group["oldest"]) if group["oldest"] else None
    states = [t.state for t in shown]
    headline = tiles.worst(states)
    stuck_total = sum(r.stuck for r in flows)
    failed_total = sum(r.failed for r in flows)
    return {
        "plant": plant,
        "window": window,
        "tiles": shown,
        "flows": flows,
        "holds": holds,
        "holds_total": hold_row.stuck if hold_row else len(holds),
        "holds_url": search_url(plant, flow=overview.HOLD_FLOW, state="stuck"),
        "letters": letters,
        "letters_total": sum(g["count"] for g in letters),
        "letters_url": dead_letters_url(plant),
        # Open exceptions, counted on the (plant, state, since) index: what is open, not history.
        "disagreements": ReconciliationException.objects.open().filter(plant=plant).count(),
        "disagreements_url": reconciliation_url(plant),
        "headline": headline,
        "headline_label": tiles.STATUS_LABELS[headline],
        "breaching": [t for t in shown if t.state == "breaching"],
        "warning": [t for t in shown if t.state == "warning"],
        "stuck_total": stuck_total,
        "stuck_url": search_url(plant, state="stuck"),
        "failed_total": failed_total,
        "failed_url": search_url(plant, state="failed", **{"from": since, "to": until}),
        "evaluated_at": max((t.status.evaluated_at for t in shown if t.status), default=None),
        "now": now,
        "zone": plant.timezone,
        "refresh": refresh_seconds(),
        "live": window.key != "custom",
    }


def dress_tile(tile, plant, window):
    """The tile's figures as people read them, its sparkline and its link."""
    tile.spark = charts.sparkline(tile.points, tile.slo.objective)
    tile.url = slo_url(plant, tile.slo, window)
    tile.objective_text = f"{tile.slo.objective * 100:g} %"
    status = tile.status
    tile.attainment_text = (
        f"{status.attainment * 100:.2f} %" if status and status.attainment is not None else None
    )
    left = tile.budget_left
    if left is None:
        tile.budget_text, tile.budget_width = None, 0
    elif tile.budget_overspent:
        tile.budget_text, tile.budget_width = "error budget spent", 0
    else:
        tile.budget_text, tile.budget_width = (
            f"{left * 100:.0f} % of error budget left",
            round(left * 100),
        )
    burn = tile.burn_1h
    tile.burn_text = f"burning {burn:.1f}× over the last hour" if burn else None
    return tile


def _hold(txn, plant, now):
    reached = [m for m in txn.flow.milestones if m in txn.milestones]
    waiting = next((m for m in txn.flow.milestones if m not in txn.milestones), None)
    return {
        "txn": txn,
        "age": format_duration(now - txn.first_seen),
        "lot": txn.business_keys.get("lot"),
        "material": txn.business_keys.get("material"),
        "reached": reached[-1] if reached else None,
        "waiting_for": waiting,
        "failed": bool(txn.last_error and txn.failure_at),
        "url": timeline_url(txn.flow.code, txn.correlation_id, plant.code),
    }


def _window(request, plant, now):
    window, error = windows.parse_window(request.GET, plant.tzinfo, now)
    return window, error


@dashboard_login_required
def plant_overview(request, code):
    """A plant at a glance: SLO tiles, flows, stuck holds, dead letters, release latency."""
    try:
        plant = windows.plant_for_user(request.user, code)
    except PermissionDenied as exc:
        return refused(request, exc)
    now = timezone.now()
    window, error = _window(request, plant, now)
    context = overview_context(request, plant, window, now)
    downtimes = planned_downtime(plant, window)
    context["downtimes"] = downtimes
    rslo = tiles.release_slo([t.slo for t in context["tiles"]])
    if rslo is not None:
        context["release_slo"] = rslo
        context["release_figure"] = charts.release_figure(
            tiles.latency_buckets(rslo, plant, window),
            slo=rslo,
            window=window,
            downtimes=downtimes,
            tz=plant.tzinfo,
            zone=plant.timezone,
            theme=theme_of(request),
        )
    context.update(
        window_error=error,
        ranges=windows.RANGES,
        custom_from=window.custom_from or _input_time(window.since, plant),
        custom_to=window.custom_to or _input_time(window.until, plant),
        self_url=request.get_full_path(),
        wall_url=reverse("plant-wall", args=[plant.code]),
    )
    template = (
        "monitoring/partials/overview_live.html"
        if request.htmx
        else "monitoring/plant_overview.html"
    )
    with timezone.override(plant.tzinfo):
        return render(request, template, context)


def planned_downtime(plant, window, flow_id=None):
    """The plant's planned downtime in the range (for a flow: its own and the plant-wide)."""
    rows = Downtime.objects.filter(plant=plant, start__lt=window.until, end__gt=window.since)
    if flow_id is not None:
        rows = rows.filter(Q(flows__isnull=True) | Q(flows__id=flow_id)).distinct()
    return list(rows.order_by("start")[:50])


def _input_time(moment, plant):
    return moment.astimezone(plant.tzinfo).strftime("%Y-%m-%dT%H:%M")


@dashboard_login_required
def plant_wall(request, code):
    """Wall-screen mode: large type, no navigation, refreshes itself."""
    try:
        plant = windows.plant_for_user(request.user, code)
    except PermissionDenied as exc:
        return refused(request, exc)
    now = timezone.now()
    context = overview_context(request, plant, windows.default_window(now), now)
    context["live"] = True
    context["overview_url"] = reverse("plant-overview", args=[plant.code])
    template = "monitoring/partials/wall_live.html" if request.htmx else "monitoring/wall.html"
    with timezone.override(plant.tzinfo):
        return render(request, template, context)


# ── One SLO ────────────────────────────────────────────────────────────────────────────────


@dashboard_login_required
def plant_slo(request, code, slug):
    """One SLO for one plant: definition, status, history, histogram, the worst items."""
    try:
        plant = windows.plant_for_user(request.user, code)
    except PermissionDenied as exc:
        return refused(request, exc)
    slo = tiles.slo_for_plant(plant, slug)
    now = timezone.now()
    window, error = _window(request, plant, now)
    theme = theme_of(request)
    tile = dress_tile(tiles.slo_tiles(plant, window, [slo])[0], plant, window)
    downtimes = planned_downtime(plant, window, slo.flow_id)
    history = tiles.slo_history(slo, plant, window)
    threshold = _threshold(slo, plant)
    context = {
        "plant": plant,
        "slo": slo,
        "tile": tile,
        "threshold": threshold,
        "threshold_text": charts.format_seconds(threshold) if threshold else None,
        "window": window,
        "window_error": error,
        "ranges": windows.RANGES,
        "custom_from": window.custom_from or _input_time(window.since, plant),
        "custom_to": window.custom_to or _input_time(window.until, plant),
        "history_figure": charts.slo_history_figure(
            history,
            slo=slo,
            window=window,
            tz=plant.tzinfo,
            zone=plant.timezone,
            theme=theme,
            downtimes=downtimes,
        )
        if history
        else None,
        "history_total": sum(p["total"] for p in history),
        "history_good": sum(p["good"] for p in history),
        "zone": plant.timezone,
        "overview_url": reverse("plant-overview", args=[plant.code]),
        "burn_rates": _burn_rates(tile),
        "downtimes": downtimes,
    }
    if slo.kind in (SLO.Kind.LATENCY, SLO.Kind.AGE):
        merged, percentiles = tiles.slo_histogram(slo, plant, window)
        context["percentiles"] = {k: charts.format_seconds(v) for k, v in percentiles.items()}
        context["histogram_figure"] = (
            charts.histogram_figure(merged, threshold=threshold, theme=theme) if merged else None
        )
    context["worst"] = [_worst(o, slo, plant) for o in tiles.worst_outcomes(slo, plant, window)]
    with timezone.override(plant.tzinfo):
        return render(request, "monitoring/slo.html", context)


def _threshold(slo, plant):
    own = next((t for t in slo.thresholds.all() if t.plant_id == plant.id), None)
    return own.threshold_seconds if own else slo.threshold_seconds


def _burn_rates(tile):
    rates = (tile.status.burn_rates or {}) if tile.status else {}
    return [(name, rates.get(name)) for name in ("5m", "30m", "1h", "6h", "3d")]


def _worst(outcome, slo, plant):
    item = {"outcome": outcome, "latency": charts.format_seconds(outcome.latency)}
    if outcome.transaction_id:
        txn = outcome.transaction
        item.update(
            label=txn.correlation_id,
            url=timeline_url(txn.flow.code, txn.correlation_id, plant.code),
            what=txn.flow.name,
            error=(txn.last_error or {}).get("code") or (txn.last_error or {}).get("message"),
        )
    elif outcome.dead_letter_id:
        letter = outcome.dead_letter
        item.update(
            label=letter.correlation_id,
            url=dead_letters_url(plant, letter.error_class),
            what=f"dead letter · {letter.error_class.replace('_', ' ')}",
            error=letter.error_code or letter.error_message,
        )
    elif outcome.exception_id:
        exception = outcome.exception
        item.update(
            label=exception.correlation_id,
            url=reconciliation_url(plant),
            what=f"reconciliation · missing {', '.join(exception.missing)}",
            error=exception.summary,
        )
    if outcome.latency is None:
        item["latency"] = "never finished" if slo.kind != SLO.Kind.SUCCESS else "failed"
    return item
