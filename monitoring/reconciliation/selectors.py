"""Reconciliation exceptions a person may see, filtered by plant, state, flow and rule; bad
filters name the field and the reason."""

from integration_hub.models import Flow, Plant
from monitoring.models import ReconciliationException
from tracing.models import timeline_url

STATES = ("open", "closed", "all")


class InvalidFilter(ValueError):
    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


def exceptions_for(user, params):
    """(queryset, cleaned values) for ?plant=&state=&flow=&rule=; state defaults to open."""
    values = {name: (params.get(name) or "").strip() for name in ("plant", "state", "flow", "rule")}
    values["state"] = values["state"] or "open"
    errors = {}
    qs = ReconciliationException.objects.for_user(user).select_related("plant", "flow", "assignee")
    if values["plant"]:
        if not Plant.objects.filter(code=values["plant"]).exists():
            errors["plant"] = f"Unknown plant {values['plant']!r}."
        elif not Plant.objects.for_user(user).filter(code=values["plant"]).exists():
            errors["plant"] = f"You are not assigned to plant {values['plant']}."
        qs = qs.filter(plant__code=values["plant"])
    if values["state"] not in STATES:
        errors["state"] = f"{values['state']!r} is not a state; valid: {', '.join(STATES)}."
    elif values["state"] != "all":
        qs = qs.filter(state=values["state"])
    if values["flow"]:
        if not Flow.objects.filter(code=values["flow"]).exists():
            errors["flow"] = f"Unknown flow {values['flow']!r}."
        qs = qs.filter(flow__code=values["flow"])
    if values["rule"]:
        qs = qs.filter(rule=values["rule"])
    if errors:
        raise InvalidFilter(errors)
    return qs.order_by("-since", "-id"), values


def exception_data(exception):
    """The API's view of one exception."""
    return {
        "id": exception.id,
        "rule": exception.rule,
        "kind": exception.kind,
        "plant": exception.plant.code,
        "flow": exception.flow.code,
        "correlation_id": exception.correlation_id,
        "business_keys": exception.business_keys,
        "milestone": exception.milestone,
        "reached": exception.reached,
        "missing": exception.missing,
        "states": exception.states,
        "summary": exception.summary,
        "since": exception.since.isoformat(),
        "state": exception.state,
        "opened_at": exception.opened_at.isoformat(),
        "closed_at": exception.closed_at.isoformat() if exception.closed_at else None,
        "closed_by_event": exception.closed_by_event or None,
        "assignee": exception.assignee.get_username() if exception.assignee else None,
        "transaction_url": timeline_url(
            exception.flow.code, exception.correlation_id, exception.plant.code
        ),
    }
