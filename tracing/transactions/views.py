"""Pages: transaction search and one transaction's timeline, events and journey."""

import json
from datetime import datetime
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from integration_hub.models import Flow, Plant, SeveralPlants, System
from integration_hub.roles import can_triage
from tracing.models import DeadLetter, Transaction, TransactionState
from tracing.transactions import charts, selectors

PAGE_SIZE = 50


MAX_PAGE = 200  # OFFSET paging: past 10,000 rows, narrow the filters instead.
# What each error class means to the person deciding whether a replay can help.
ERROR_CLASSES = {
    "transient": "transient (a retry or replay may get through)",
    "business_rule": "business rule (fix the data in the target system first)",
    "schema": "schema (the message itself is malformed)",
    "master_data": "master data (missing or unreleased master data)",
    "unknown": "unknown",
}


FILTERS = ("q", "key", "plant", "flow", "system", "state", "from", "to")


def _search_filters(params, plants, flows, systems):
    """(the values as typed, selector kwargs, {field: message}) from the query string."""
    values = {name: params.get(name, "").strip() for name in FILTERS}
    errors = {}
    if values["plant"] and values["plant"] not in plants:
        errors["plant"] = f"No plant {values['plant']!r} is registered."
    if values["flow"] and values["flow"] not in flows:
        errors["flow"] = f"No flow {values['flow']!r} is registered."
    if values["system"] and values["system"] not in systems:
        errors["system"] = f"No system {values['system']!r} is registered."
    if values["state"] and values["state"] not in TransactionState.values:
        errors["state"] = f"Choose one of: {', '.join(TransactionState.labels)}."
    # Times without an offset are read in the chosen plant's zone (UTC without a plant).
    plant = plants.get(values["plant"])
    times = {}
    with timezone.override(plant.tzinfo if plant else timezone.get_default_timezone()):
        for field in ("from", "to"):
            try:
                times[field] = selectors.parse_time(field, values[field])
            except selectors.InvalidFilter as exc:
                errors[exc.field] = str(exc)
    kwargs = {
        "q": values["q"] or None,
        "key": values["key"] or None,
        "plant": values["plant"] or None,
        "flow": values["flow"] or None,
        "system": values["system"] or None,
        "state": values["state"] or None,
        "since": times.get("from"),
        "until": times.get("to"),
    }
    return values, kwargs, errors


def _page_number(raw):
    try:
        return min(max(1, int(raw)), MAX_PAGE)
    except (TypeError, ValueError):
        return 1


@login_required
def transaction_search(request):
    """One box for a correlation ID or business key value, plus filters; newest activity first."""
    plants = {p.code: p for p in Plant.objects.all()}
    flows = {f.code: f for f in Flow.objects.all()}
    systems = {s.code: s for s in System.objects.all()}
    values, kwargs, errors = _search_filters(request.GET, plants, flows, systems)
    page = _page_number(request.GET.get("page"))
    rows, has_older = [], False
    if not errors:
        try:
            qs = selectors.search_transactions(user=request.user, **kwargs)
        except selectors.InvalidFilter as exc:
            errors[exc.field] = str(exc)
        else:
            start = (page - 1) * PAGE_SIZE
            rows = list(qs[start : start + PAGE_SIZE + 1])
            has_older = len(rows) > PAGE_SIZE and page < MAX_PAGE
            rows = rows[:PAGE_SIZE]
    now = timezone.now()
    query = {k: v for k, v in values.items() if v}
    context = {
        "values": values,
        "errors": errors,
        "plants": plants.values(),
        "flows": flows.values(),
        "systems": systems.values(),
        "states": TransactionState.choices,
        "results": [_row(txn, now) for txn in rows],
        "page": page,
        "first_shown": (page - 1) * PAGE_SIZE + 1,
        "last_shown": (page - 1) * PAGE_SIZE + len(rows),
        "newer_query": _with_page(query, page - 1) if page > 1 else None,
        "older_query": _with_page(query, page + 1) if has_older else None,
        "filtered": bool(query),
        "oob": bool(request.htmx),
    }
    template = "tracing/partials/results.html" if request.htmx else "tracing/search.html"
    return render(request, template, context)


def _row(txn, now):
    state = txn.current_state(now)
    return {"txn": txn, "state": state, "state_label": TransactionState(state).label}


def _with_page(query, page):
    return urlencode({**query, "page": page} if page > 1 else query)


def _pretty(value):
    if value is None:
        return None
    return json.dumps(value, indent=2, ensure_ascii=False)


@login_required
def transaction_detail(request, flow, correlation_id):
    """One transaction: what it is, how far it got, every event, and its order's journey."""
    try:
        txn = selectors.get_transaction(
            flow=flow,
            correlation_id=correlation_id,
            user=request.user,
            plant=request.GET.get("plant"),
        )
    except Transaction.DoesNotExist:
        raise Http404("No such transaction.") from None
    except SeveralPlants as exc:
        # Two of the reader's plants reuse this number: let them choose, never merge.
        now = timezone.now()
        rows = [_row(t, now) for t in exc.rows]
        context = {"rows": rows, "flow": flow, "correlation_id": correlation_id}
        return render(request, "tracing/choose_plant.html", context)
    now = timezone.now()
    events = list(selectors.transaction_events(txn))
    theme = "dark" if request.COOKIES.get("theme") == "dark" else "light"
    journey = sorted(
        [*selectors.journey(txn, user=request.user), txn],
        key=lambda t: (t.flow.position, t.first_seen, t.id),
    )
    progress = charts.milestone_progress(txn)
    context = {
        "txn": txn,
        **_row(txn, now),
        "progress": progress,
        "completed_by": next(
            (
                step["name"]
                for step in sorted(progress, key=lambda step: step["reached_at"] or now)
                if step["completes"] and step["reached_at"]
            ),
            None,
        ),
        "total": (
            charts.format_duration(txn.completed_at - txn.first_seen) if txn.completed_at else None
        ),
        "open_for": charts.format_duration(now - txn.first_seen),
        "allowed": charts.format_duration(txn.flow.stuck_after),
        "figure": charts.swimlane_figure(txn, events, theme=theme),
        "events": [
            {
                "event": e,
                "payload": _pretty(e.payload),
                "attributes": _pretty(e.attributes),
                "error_class": e.error_class.replace("_", " "),
                "dead_letter": _dead_letter_of(e),
            }
            for e in events
        ],
        "can_replay": can_triage(request.user),
        # Reported straight by middleware (no trace event of ours to hang them on).
        "reported_dead_letters": txn.dead_letters.filter(event__isnull=True)
        .select_related("source", "target")
        .order_by("first_failed_at"),
        "last_error_at": _parse(txn.last_error.get("at")) if txn.last_error else None,
        "last_error_class": ERROR_CLASSES.get((txn.last_error or {}).get("class"), ""),
        "failure_event": next((e for e in events if e.event_id == txn.failure_event_id), None),
        "journey": [
            {
                **_row(t, now),
                "shared": {
                    name: value
                    for name, value in t.business_keys.items()
                    if txn.business_keys.get(name) == value
                },
                "current": t.pk == txn.pk,
            }
            for t in journey
        ],
        "zone": txn.plant.timezone,
    }
    with timezone.override(txn.plant.tzinfo):
        return render(request, "tracing/detail.html", context)


def _dead_letter_of(event):
    """The dead letter captured from this event, if any (read with the events, no query)."""
    try:
        return event.dead_letter
    except DeadLetter.DoesNotExist:
        return None


def _parse(value):
    return datetime.fromisoformat(value) if value else None
