"""Dashboard figures, built with plotly from selector output (monitoring/dashboards/).

Figures are dicts ready for json_script; the page draws them with the plotly.js the package
ships. Each layout is built with plotly once per theme, zone and objective (plotly validates a
whole figure in tens of milliseconds, an hourly chart of 28 days in hundreds); the traces are
the plain dicts plotly writes for them (a test checks them against plotly). Backgrounds are
transparent and text and grid colours are reset from the page's CSS variables when drawn, so
one figure reads in the light and the dark theme; the data colours come from the theme the
person chose (the `theme` cookie), defaulting to light.
"""

import functools
import json
from datetime import datetime

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from monitoring.slo import histogram

PALETTES = {
    "light": {
        "ok": "#1a7f37",
        "warn": "#9a6700",
        "bad": "#c62828",
        "p50": "#1f5fbf",
        "p95": "#8250df",
        "p99": "#b35900",
        "volume": "rgba(91, 100, 112, 0.28)",
        "downtime": "rgba(130, 80, 223, 0.12)",
        "text": "#5b6470",
        "grid": "rgba(91, 100, 112, 0.22)",
    },
    "dark": {
        "ok": "#4ac26b",
        "warn": "#d4a72c",
        "bad": "#ff6b6b",
        "p50": "#6ea8ff",
        "p95": "#c6a6ff",
        "p99": "#f0a35e",
        "volume": "rgba(154, 164, 177, 0.30)",
        "downtime": "rgba(198, 166, 255, 0.16)",
        "text": "#9aa4b1",
        "grid": "rgba(154, 164, 177, 0.22)",
    },
}


FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


CONFIG = {"responsive": True, "displaylogo": False}


def palette(theme):
    return PALETTES.get(theme, PALETTES["light"])


def _local(moment, tz):
    """Wall-clock time in the plant's zone: plotly.js ignores UTC offsets in date strings."""
    return moment.astimezone(tz).replace(tzinfo=None)


def _layout(fig, colours, *, height, zone):
    fig.update_layout(
        height=height,
        margin={"l": 64, "r": 64, "t": 12, "b": 40},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"family": FONT, "size": 13, "color": colours["text"]},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        hovermode="x unified",
        hoverlabel={"align": "left"},
    )
    fig.update_xaxes(gridcolor=colours["grid"], zeroline=False)
    fig.update_yaxes(gridcolor=colours["grid"], zeroline=False)
    if zone:
        fig.update_xaxes(title_text=f"Time ({zone})", row=None)


def _as_dict(fig):
    return json.loads(fig.to_json())


def format_seconds(seconds):
    """A latency for people: 850 ms, 42 s, 3.5 min, 2.1 h."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 100:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@functools.lru_cache(maxsize=64)
def _release_layout(theme, zone):
    """The release chart's layout, built once per theme and zone (plotly's validation of a
    whole figure costs tens of milliseconds; a wall screen asks every 15 s)."""
    colours = palette(theme)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    _layout(fig, colours, height=320, zone=zone)
    fig.update_yaxes(title_text="Latency (s)", type="log", dtick=1, secondary_y=False)
    fig.update_yaxes(
        title_text="Releases", secondary_y=True, showgrid=False, rangemode="tozero", tickformat=",d"
    )
    fig.update_layout(bargap=0.15)
    return json.dumps(_as_dict(fig)["layout"])


def _span(window, tz):
    """The selected range as the x axis range: a chart with one bucket still shows the hours
    (or days) asked for, not a sliver of a second around that bucket."""
    return [_local(window.since, tz).isoformat(), _local(window.until, tz).isoformat()]


def downtime_bands(downtimes, tz, theme):
    """Planned downtime as shaded bands across the whole plot (the clock stopped there)."""
    colour = palette(theme)["downtime"]
    return [
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "y0": 0,
            "y1": 1,
            "layer": "below",
            "x0": _local(d.start, tz).isoformat(),
            "x1": _local(d.end, tz).isoformat(),
            "fillcolor": colour,
            "line": {"width": 0},
        }  # fmt: skip
        for d in downtimes
    ]


def _times(moments, tz):
    return [_local(at, tz).isoformat() for at in moments]


def release_figure(buckets, *, slo, window, tz, zone, theme="light", downtimes=()):
    """Order release latency p50/p95/p99 (lines, left axis) and releases measured per bucket
    (bars, right axis), with the SLO threshold as a dashed line, over the selected range."""
    colours = palette(theme)
    times = _times([at for at, *_ in buckets], tz)
    span = _span(window, tz)
    data = [
        {
            "type": "bar",
            "x": times,
            "y": [total for _, total, _, _ in buckets],
            "name": "Releases measured",
            "marker": {"color": colours["volume"]},
            "hovertemplate": "%{y} releases<extra></extra>",
            "yaxis": "y2",
        }
    ]
    for name, width in (("p50", 1.5), ("p95", 3), ("p99", 1.5)):
        data.append(
            {
                "type": "scatter",
                "x": times,
                "y": [p[name] for *_, p in buckets],
                "name": name,
                "mode": "lines+markers" if len(buckets) < 40 else "lines",
                "line": {"color": colours[name], "width": width},
                "connectgaps": False,
                "hovertemplate": f"{name} %{{y:.3~s}}s<extra></extra>",
                "yaxis": "y",
            }
        )
    if slo is not None and slo.threshold_seconds and times:
        # A trace, not a shape: shapes on a log axis with a secondary axis land on the wrong one.
        data.append(
            {
                "type": "scatter",
                "x": span,
                "y": [slo.threshold_seconds] * 2,
                "name": f"objective {format_seconds(slo.threshold_seconds)}",
                "mode": "lines",
                "line": {"color": colours["bad"], "dash": "dash", "width": 1.5},
                "hoverinfo": "skip",
                "yaxis": "y",
            }
        )
    layout = json.loads(_release_layout(theme, zone))
    layout["xaxis"]["range"] = span
    layout["shapes"] = downtime_bands(downtimes, tz, theme)
    return {"data": data, "layout": layout}


@functools.lru_cache(maxsize=64)
def _history_layout(theme, zone, objective):
    """The SLO history's layout: attainment over burn rate, the objective and 1× lines."""
    colours = palette(theme)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_hline(
        y=objective * 100,
        line={"color": colours["ok"], "dash": "dash", "width": 1.5},
        annotation_text=f"objective {objective * 100:g} %",
        annotation_position="bottom left",
        row=1,
        col=1,
        exclude_empty_subplots=False,
    )
    fig.add_hline(
        y=1,
        line={"color": colours["warn"], "dash": "dot", "width": 1},
        annotation_text="1× (budget spent exactly over the window)",
        annotation_position="top left",
        row=2,
        col=1,
        exclude_empty_subplots=False,
    )
    _layout(fig, colours, height=440, zone=None)
    fig.update_yaxes(title_text="Attainment (%)", row=1, col=1)
    fig.update_yaxes(title_text="Burn rate (×)", rangemode="tozero", row=2, col=1)
    fig.update_xaxes(title_text=f"Time ({zone})", row=2, col=1)
    fig.update_layout(showlegend=False)
    return json.dumps(_as_dict(fig)["layout"])


def slo_history_figure(points, *, slo, window, tz, zone, theme="light", downtimes=()):
    """Attainment per bucket against the objective (top) and burn rate per bucket (bottom),
    over the selected range."""
    colours = palette(theme)
    times = _times([_parse(p["at"]) for p in points], tz)
    attainment = [None if p["attainment"] is None else p["attainment"] * 100 for p in points]
    burn = [p["burn_rate"] for p in points]
    data = [
        {
            "type": "scatter",
            "x": times,
            "y": attainment,
            "name": "Attainment",
            "mode": "lines+markers",
            "line": {"color": colours["p50"], "width": 2},
            "marker": {
                "color": [
                    colours["ok"] if a is None or a >= slo.objective * 100 else colours["bad"]
                    for a in attainment
                ],
                "size": 6,
            },
            "customdata": [[p["good"], p["total"]] for p in points],
            "hovertemplate": "%{y:.2f} % (%{customdata[0]}/%{customdata[1]} good)<extra></extra>",
            "xaxis": "x",
            "yaxis": "y",
        },
        {
            "type": "bar",
            "x": times,
            "y": burn,
            "name": "Burn rate",
            "marker": {
                "color": [
                    colours["bad"] if b > 14.4 else colours["warn"] if b > 1 else colours["ok"]
                    for b in burn
                ]
            },
            "hovertemplate": "burn rate %{y:.2f}×<extra></extra>",
            "xaxis": "x2",
            "yaxis": "y2",
        },
    ]
    layout = json.loads(_history_layout(theme, zone, slo.objective))
    layout["xaxis"]["range"] = layout["xaxis2"]["range"] = _span(window, tz)
    layout["shapes"] = layout.get("shapes", []) + downtime_bands(downtimes, tz, theme)
    return {"data": data, "layout": layout}


@functools.lru_cache(maxsize=64)
def _histogram_layout(theme, threshold):
    colours = palette(theme)
    fig = go.Figure()
    _layout(fig, colours, height=300, zone=None)
    title = "Latency bucket (each about 12 % wide)"
    if threshold:
        title += f"; red: past the {format_seconds(threshold)} threshold"
    fig.update_xaxes(type="category", title_text=title, tickangle=-45)
    fig.update_yaxes(title_text="Items", rangemode="tozero")
    fig.update_layout(hovermode="closest", showlegend=False, bargap=0.05)
    return json.dumps(_as_dict(fig)["layout"])


def histogram_figure(merged, *, threshold, theme="light"):
    """The latency histogram: one bar per bucket from the fastest to the slowest seen (empty
    buckets included, so the shape reads true), green within the threshold, red past it."""
    colours = palette(theme)
    present = sorted(int(k) for k in merged)
    keys = list(range(present[0], present[-1] + 1)) if present else []
    uppers = [histogram.upper_edge(k) for k in keys]
    bar = {
        "type": "bar",
        "x": [f"≤ {format_seconds(up)}" for up in uppers],
        "y": [merged.get(str(k), 0) for k in keys],
        "marker": {
            "color": [
                colours["ok"] if not threshold or up <= threshold * 1.0001 else colours["bad"]
                for up in uppers
            ]
        },
        "hovertemplate": "%{x}: %{y}<extra></extra>",
        "name": "Items",
    }
    return {"data": [bar], "layout": json.loads(_histogram_layout(theme, threshold))}


def _parse(value):
    return datetime.fromisoformat(value)


# ── Sparklines (inline SVG: no script, cheap to refresh) ─────────────────────────────────────

SPARK_W, SPARK_H = 240, 44


def sparkline(points, objective):
    """SVG coordinates for attainment per bucket: {'line', 'objective_y', 'bad': [(x, y)]}.

    The vertical scale spans from the lowest attainment shown (or a little under the objective)
    to 100 %, so a dip below the objective is visible even for a 99.5 % objective.
    """
    values = [(i, a) for i, (_, a, _) in enumerate(points) if a is not None]
    if not values:
        return None
    low = min(min(a for _, a in values), objective - (1 - objective))
    low = max(0.0, min(low, objective - 0.001))
    span = 1.0 - low or 1.0
    n = max(len(points) - 1, 1)

    def y(a):
        return round(2 + (SPARK_H - 4) * (1.0 - (a - low) / span), 1)

    def x(i):
        return round(SPARK_W * i / n, 1) if len(points) > 1 else SPARK_W / 2

    coords = [(x(i), y(a)) for i, a in values]
    return {
        "line": " ".join(f"{cx},{cy}" for cx, cy in coords),
        "objective_y": y(objective),
        "bad": [(cx, cy) for (cx, cy), (_, a) in zip(coords, values, strict=True) if a < objective],
        "width": SPARK_W,
        "height": SPARK_H,
    }
