"""Where a notice points: the page of the cause first, then the dashboard and the history."""

from urllib.parse import urlencode

from django.conf import settings

from monitoring.models import AlertRule


def base_url():
    return settings.HUB_BASE_URL.rstrip("/")


DEAD_LETTER_KINDS = {
    AlertRule.Kind.DEAD_LETTER_NEW_GROUP,
    AlertRule.Kind.DEAD_LETTER_GROWTH,
    AlertRule.Kind.DEAD_LETTERS_OPEN,
}
SLO_KINDS = {AlertRule.Kind.SLO_FAST_BURN, AlertRule.Kind.SLO_SLOW_BURN}


def _url(path, **query):
    query = {name: value for name, value in query.items() if value}
    return f"{base_url()}{path}{'?' + urlencode(query) if query else ''}"


def cause(alert):
    """(title, URL) of the page that shows what the alert is about, one click from the notice:
    the dead-letter group in the inbox, the stuck list, the SLO's page, the silent system's
    latest transactions. None when there is nothing narrower than the dashboard."""
    kind = alert.rule_kind
    plant = alert.plant.code if alert.plant else None
    flow = alert.flow.code if alert.flow else None
    if kind in DEAD_LETTER_KINDS:
        fingerprint = alert.subject if kind != AlertRule.Kind.DEAD_LETTERS_OPEN else None
        title = "Open the dead letters of this cause" if fingerprint else "Open the dead letters"
        return title, _url("/dead-letters/", plant=plant, flow=flow, fingerprint=fingerprint)
    if kind == AlertRule.Kind.STUCK:
        url = _url("/transactions/", plant=plant, flow=flow, state="stuck")
        return "Open the stuck transactions", url
    if kind in SLO_KINDS and plant and alert.subject:
        return "Open the SLO", _url(f"/plants/{plant}/slos/{alert.subject}/")
    if kind == AlertRule.Kind.RECONCILIATION:
        url = _url("/reconciliation/", plant=plant, flow=flow, state="open")
        return "Open the reconciliation exceptions", url
    if kind == AlertRule.Kind.SILENCE and alert.system:
        url = _url("/transactions/", plant=plant, system=alert.system.code)
        return f"Open {alert.system.code}'s latest transactions", url
    return None


def links(alert, found):
    """The notice's links: `cause` first (when there is one), then the dashboard and history."""
    dashboard = _url(f"/plants/{alert.plant.code}/" if alert.plant else "/")
    if alert.plant and alert.flow:
        dashboard = _url(f"/plants/{alert.plant.code}/", flow=alert.flow.code)
    first = {"cause": found[1]} if found else {}
    return first | {"dashboard": dashboard, "alert": _url("/alerts/", id=alert.id)}


def link_titles(doc):
    """[(title, URL)] in the order a notice shows them: the cause, the dashboard, the history."""
    plant = doc.get("plant")
    titles = {
        "cause": doc.get("cause_title") or "Open the cause",
        "dashboard": f"Open the dashboard for {plant}" if plant else "Open the dashboard",
        "alert": "Alert history",
    }
    # In this order, not the document's: a JSON object stored in PostgreSQL (jsonb) keeps no
    # key order.
    links = doc["links"]
    return [(title, links[name]) for name, title in titles.items() if name in links]
