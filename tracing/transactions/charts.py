"""The transaction timeline: milestone progress and a swimlane figure (one lane per system)."""

import json
from datetime import timedelta
from html import escape

import plotly.graph_objects as go

from tracing.ingest import correlate
from tracing.models import EventStatus

# Status colours match static/css/hub.css; both palettes are legible on a transparent background.
PALETTES = {
    "light": {
        "ok": "#1a7f37",
        "retrying": "#9a6700",
        "failed": "#c62828",
        "rejected": "#c62828",
        "text": "#5b6470",
        "grid": "rgba(91, 100, 112, 0.25)",
        "label_bg": "rgba(255, 255, 255, 0.85)",
        "link": "#8c96a3",
    },
    "dark": {
        "ok": "#4ac26b",
        "retrying": "#d4a72c",
        "failed": "#ff6b6b",
        "rejected": "#ff6b6b",
        "text": "#9aa4b1",
        "grid": "rgba(154, 164, 177, 0.25)",
        "label_bg": "rgba(23, 27, 33, 0.85)",
        "link": "#6b7480",
    },
}
# Shape as well as colour, so the status reads without colour vision.
SYMBOLS = {"ok": "circle", "retrying": "diamond", "failed": "x", "rejected": "square"}


def format_duration(delta):
    """A short human duration: 36 s, 4 min 12 s, 2 h 5 min, 3 d 4 h."""
    seconds = int(round(delta.total_seconds()))
    sign, seconds = ("−", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h" if hours else f"{days} d"
    elif hours:
        text = f"{hours} h {minutes} min" if minutes else f"{hours} h"
    elif minutes:
        text = f"{minutes} min {secs} s" if secs else f"{minutes} min"
    else:
        text = f"{secs} s"
    return sign + text


def milestone_progress(txn):
    """Each milestone of the flow in order: when it was first reached and the time since the
    previous reached milestone. A fan-out milestone is reached when every target system has
    it, and lists each target with the time it got it (None: still missing)."""
    flow = txn.flow
    targets = sorted(flow.target_systems.all(), key=lambda s: s.code)
    target_ids = tuple(s.id for s in targets)
    progress, previous = [], None
    for name in flow.milestones:
        reached_at = correlate.reached_at(txn, name, flow.fan_out_milestones, target_ids)
        step = {
            "name": name,
            "reached_at": reached_at,
            "completes": name in flow.completing_milestones,
            "previous": None,
            "since_previous": None,
            "targets": [],
        }
        if name in flow.fan_out_milestones and targets:
            got = correlate.targets_reached(txn, name, target_ids)
            step["targets"] = [(s.code, got.get(s.id)) for s in targets]
        if reached_at is not None:
            if previous is not None:
                step["previous"] = previous["name"]
                step["since_previous"] = format_duration(reached_at - previous["reached_at"])
            previous = step
        progress.append(step)
    return progress


def _lanes(events):
    """Source systems in the order they first spoke."""
    lanes = []
    for event in events:
        if event.source.code not in lanes:
            lanes.append(event.source.code)
    return lanes


def _hover(event, tz):
    lines = [
        f"<b>{escape(event.step)}</b> · {escape(event.get_status_display())}",
        escape(
            f"{event.source.code} → {event.target.code}" if event.target_id else event.source.code
        ),
        escape(event.occurred_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")),
    ]
    if event.error_code or event.error_message:
        error = ": ".join(v for v in (event.error_code, event.error_message) if v)
        lines.append(escape(error if len(error) <= 120 else error[:119] + "…"))
    lines.append(f"event {escape(event.event_id)}")
    return "<br>".join(lines)


def _took(a, b):
    return format_duration(b.occurred_at - a.occurred_at)


def _anchor(moment, start, end):
    """Keep labels near the ends of the time axis inside the plot."""
    span = (end - start).total_seconds()
    if not span:
        return "center"
    share = (moment - start).total_seconds() / span
    return "left" if share < 0.2 else "right" if share > 0.8 else "center"


def _local(moment, tz):
    """Wall-clock time in the plant's zone: plotly.js ignores UTC offsets in date strings."""
    return moment.astimezone(tz).replace(tzinfo=None)


def swimlane_figure(txn, events, *, theme="light"):
    """The transaction as a Plotly figure (a dict ready for json_script).

    One lane per source system, one marker per event coloured by status (one trace per status,
    so the legend explains the colours), and a dotted link between consecutive milestones
    labelled with the time between them. Times are the plant's wall-clock time.
    """
    palette = PALETTES.get(theme, PALETTES["light"])
    tz = txn.plant.tzinfo
    events = list(events)
    lanes = _lanes(events)
    lane_y = {code: -index for index, code in enumerate(lanes)}  # first system on top
    fig = go.Figure()

    # Milestone links first, so the markers draw over them.
    first_ok = {}
    for event in events:
        if event.status == EventStatus.OK and event.step not in first_ok:
            first_ok[event.step] = event
    reached = [
        (step["name"], first_ok[step["name"]])
        for step in milestone_progress(txn)
        if step["reached_at"] is not None and step["name"] in first_ok
    ]
    start = min((e.occurred_at for e in events), default=txn.first_seen)
    end = max((e.occurred_at for e in events), default=txn.last_seen)
    for (name_a, a), (name_b, b) in zip(reached, reached[1:], strict=False):
        ya, yb = lane_y[a.source.code], lane_y[b.source.code]
        fig.add_trace(
            go.Scatter(
                x=[_local(a.occurred_at, tz), _local(b.occurred_at, tz)],
                y=[ya, yb],
                mode="lines",
                line={"color": palette["link"], "width": 1.5, "dash": "dot"},
                hoverinfo="skip",
                showlegend=False,
                name=f"{name_a} → {name_b}",
            )
        )
        # Written under the later milestone's mark: marks in different lanes never collide.
        fig.add_annotation(
            x=_local(b.occurred_at, tz),
            y=yb,
            yshift=-22,
            xanchor=_anchor(b.occurred_at, start, end),
            text=f"{escape(name_a)} → {escape(name_b)} <b>{_took(a, b)}</b>",
            showarrow=False,
            font={"size": 12, "color": palette["text"]},
            bgcolor=palette["label_bg"],
            borderpad=2,
        )

    for status in EventStatus:
        group = [e for e in events if e.status == status]
        if not group:
            continue
        fig.add_trace(
            go.Scatter(
                x=[_local(e.occurred_at, tz) for e in group],
                y=[lane_y[e.source.code] for e in group],
                mode="markers+text",
                name=status.label,
                meta={"status": status.value},
                marker={
                    "color": palette[status.value],
                    "symbol": SYMBOLS[status.value],
                    "size": 14,
                    "line": {"width": 1, "color": palette[status.value]},
                },
                text=[e.step for e in group],
                textposition="top center",
                textfont={"color": palette["text"], "size": 12},
                hovertext=[_hover(e, tz) for e in group],
                hovertemplate="%{hovertext}<extra></extra>",
                customdata=[e.event_id for e in group],
            )
        )

    zone = txn.plant.timezone
    # Room either side so the first and last marks and their labels are not cut off.
    pad = max((end - start) * 0.06, timedelta(seconds=2))
    fig.update_layout(
        height=max(220, 120 + 70 * len(lanes)),
        margin={"l": 60, "r": 24, "t": 16, "b": 48},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={
            "family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
            "size": 13,
            "color": palette["text"],
        },
        legend={"orientation": "h", "y": -0.25, "x": 0},
        hoverlabel={"align": "left"},
        xaxis={
            "title": {"text": f"Time ({zone})"},
            "gridcolor": palette["grid"],
            "zeroline": False,
            "tickformat": "%H:%M:%S\n%b %d",
            "range": [_local(start - pad, tz), _local(end + pad, tz)],
        },
        yaxis={
            "tickvals": list(lane_y.values()),
            "ticktext": lanes,
            "gridcolor": palette["grid"],
            "zeroline": False,
            "range": [-len(lanes) + 0.4, 0.6],
            "fixedrange": True,
        },
    )
    return json.loads(fig.to_json())
