"""The transaction pages: search (page and HTMX fragment) and one transaction's detail."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from tests.events import event, sample_events
from tracing.ingest.pipeline import ingest_events
from tracing.transactions import charts

SAMPLES_RECEIVED = datetime(2026, 11, 20, 5, 56, tzinfo=UTC)  # just after the last sample


def detail_url(flow, correlation_id, plant="P100"):
    """A timeline link as the pages write it: it names the plant."""
    return reverse("transaction-detail", args=[flow, correlation_id]) + f"?plant={plant}"


def search(client, **params):
    """The results section of the search page."""
    response = client.get(reverse("transaction-search"), params)
    assert response.status_code == 200
    html = response.content.decode()
    return html[html.index('<section id="results"') :]


def search_page(client, **params):
    response = client.get(reverse("transaction-search"), params)
    assert response.status_code == 200
    return response.content.decode()


def figure_in(html):
    match = re.search(r'<script id="timeline-figure" type="application/json">(.*?)</script>', html)
    assert match, "the page embeds no timeline figure"
    return json.loads(match.group(1))


@pytest.fixture
def samples(p100, p200):
    result = ingest_events(sample_events(), now=SAMPLES_RECEIVED)
    assert not result.rejected
    return result


@pytest.fixture
def bob_client(client, bob):
    client.force_login(bob)
    return client


# ── Search ──────────────────────────────────────────────────────────────────────────────────────


def test_search_by_correlation_id_finds_that_transaction(bob_client, samples):
    html = search(bob_client, q="PO-1000123")
    assert detail_url("order_release", "PO-1000123") in html
    assert "PO-1000124" not in html


def test_search_by_order_number_finds_the_order_across_flows(bob_client, samples):
    html = search(bob_client, q="1000123")
    for flow, correlation_id in [
        ("order_release", "PO-1000123"),
        ("material_consumption", "GI-88412-7"),
        ("production_confirmation", "CF-88412-10"),
        ("goods_receipt", "GR-1000123-1"),
    ]:
        assert detail_url(flow, correlation_id) in html
    assert "PO-1000124" not in html
    assert "DLV-80011234" not in html


def test_search_by_named_business_key(bob_client, samples):
    html = search(bob_client, key="delivery:80011234")
    assert detail_url("shipment_confirmation", "DLV-80011234", "P200") in html
    assert "PO-1000123" not in html


def test_state_and_plant_filters_narrow_the_results(bob_client, samples):
    failed = search(bob_client, state="failed")
    for correlation_id in ("PO-1000124", "GI-88412-7", "DLV-80011234"):
        assert f"<code>{correlation_id}</code>" in failed
    assert "<code>PO-1000123</code>" not in failed
    assert "<code>TO-551300</code>" not in failed

    plant_200 = search(bob_client, plant="P200")
    assert "<code>TO-551300</code>" in plant_200
    assert "<code>DLV-80011234</code>" in plant_200
    assert "<code>PO-1000123</code>" not in plant_200

    both = search(bob_client, plant="P200", state="failed")
    assert "<code>DLV-80011234</code>" in both
    assert "<code>TO-551300</code>" not in both


def test_results_show_state_and_times_in_the_plant_time_zone(bob_client, samples):
    html = search(bob_client, q="PO-1000123")
    assert '<span class="badge state-completed">Completed</span>' in html
    # The last event happened at 06:00:41+01:00; P100 is in Europe/Berlin (CET in November).
    assert "2026-11-20 06:00:41" in html
    assert "CET" in html


def test_a_bad_time_filter_is_explained_next_to_its_field(bob_client, samples):
    html = search_page(bob_client, q="1000123", **{"from": "yesterday"})
    assert '<span id="error-from" class="error" aria-live="polite">Active from: ' in html
    assert "&#x27;yesterday&#x27; is not an ISO 8601 time" in html
    assert 'id="id_from" name="from" value="yesterday"' in html
    assert 'name="q" value="1000123"' in html  # kept in the box, not listed as a result
    assert detail_url("order_release", "PO-1000123") not in html


def test_unknown_state_and_plant_are_explained_not_a_server_error(bob_client, samples):
    html = search_page(bob_client, state="lost", plant="P999")
    assert "Choose one of: In flight, Completed, Failed, Stuck." in html
    assert "No plant &#x27;P999&#x27; is registered." in html


def test_time_filters_narrow_by_activity(bob_client, samples):
    # In P100's zone: the order release ended 06:00:41, the goods receipt began at 06:45.
    html = search(bob_client, plant="P100", **{"from": "2026-11-20T06:40"})
    assert "<code>GR-1000123-1</code>" in html
    assert "<code>PO-1000123</code>" not in html
    html = search(bob_client, plant="P100", to="2026-11-20T06:05:00+01:00")
    assert "<code>PO-1000123</code>" in html
    assert "<code>GR-1000123-1</code>" not in html


def test_nothing_found_says_so_and_how_to_search(bob_client, samples):
    html = search(bob_client, q="10001")
    assert "No transaction matches" in html
    assert "must match exactly" in html


def test_results_page_by_fifty_newest_first(bob_client, p100):
    start = datetime.now(UTC) - timedelta(hours=2)
    ingest_events(
        [event(correlation_id=f"PO-{n:03}", at=start + timedelta(minutes=n)) for n in range(55)]
    )
    first = search(bob_client)
    assert "Showing 1–50" in first
    assert "<code>PO-054</code>" in first
    assert "<code>PO-004</code>" not in first
    assert "Older →" in first
    older = search(bob_client, page="2")
    assert "Showing 51–55" in older
    assert "<code>PO-004</code>" in older
    assert "<code>PO-054</code>" not in older
    assert "← Newer" in older
    assert "Older →" not in older


def test_htmx_request_gets_only_the_results_fragment(bob_client, samples):
    response = bob_client.get(
        reverse("transaction-search"), {"q": "1000123"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert "<html" not in html
    assert "<form" not in html
    assert detail_url("order_release", "PO-1000123") in html
    # Field messages update out of band, next to their fields.
    assert '<span id="error-from" class="error" aria-live="polite" hx-swap-oob="true">' in html


def test_htmx_request_with_a_bad_filter_updates_the_field_message(bob_client, samples):
    response = bob_client.get(
        reverse("transaction-search"), {"to": "soon"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert 'hx-swap-oob="true">Active until: &#x27;soon&#x27; is not an ISO 8601 time' in html


# ── Detail ──────────────────────────────────────────────────────────────────────────────────────


def test_detail_shows_header_milestones_and_durations(bob_client, samples):
    response = bob_client.get(detail_url("order_release", "PO-1000123"))
    html = response.content.decode()
    assert "Order release transaction" in html
    assert (
        "Completed: it reached <strong>acknowledged</strong>, 36 s after its first event." in html
    )
    assert "<code>PO-1000123</code>" in html
    assert '<span class="badge state-completed">Completed</span>' in html
    assert "P100</strong> Plant 100 Stuttgart" in html
    assert "?key=order:1000123" in html
    assert "Europe/Berlin" in html
    for milestone, at in [
        ("released", "06:00:05"),
        ("received", "06:00:07"),
        ("acknowledged", "06:00:41"),
    ]:
        assert f'<span class="name">{milestone}' in html
        assert f"{at} CET" in html
    assert "+2 s" in html  # released → received
    assert "+34 s" in html  # received → acknowledged
    assert "First event to completion: <strong>36 s</strong>" in html


def test_detail_lists_every_event_with_pretty_payload(bob_client, samples):
    html = bob_client.get(detail_url("order_release", "PO-1000123")).content.decode()
    for event_id in ("erp-rel-1000123-1", "mw-rel-1000123-1", "mes-rel-1000123-1"):
        assert f'<code class="muted small">{event_id}</code>' in html
    assert "<summary>Payload</summary>" in html
    assert "\n  &quot;ProductionOrder&quot;: {\n    &quot;ID&quot;: &quot;1000123&quot;," in html
    assert "&quot;mes_work_order&quot;: &quot;WO-88412&quot;" in html  # attributes


def test_detail_of_a_failed_transaction_shows_the_error(bob_client, samples):
    html = bob_client.get(detail_url("material_consumption", "GI-88412-7")).content.decode()
    assert '<span class="badge state-failed">Failed</span>' in html
    assert '<section class="error-box" aria-labelledby="error-h">' in html
    assert "<code>M7-021</code> Deficit of SL Unrestricted-use 2.5 KG : RM-200 P100 0001" in html
    assert "business rule (fix the data in the target system first)" in html
    assert '<span class="badge status-failed">Failed</span>' in html
    assert "not yet reached" in html  # the "posted" milestone


def test_detail_embeds_a_swimlane_with_one_red_mark_for_the_failure(bob_client, samples):
    html = bob_client.get(detail_url("material_consumption", "GI-88412-7")).content.decode()
    assert "plotly/plotly.min.js" in html
    figure = figure_in(html)
    marks = [t for t in figure["data"] if "markers" in t.get("mode", "")]
    assert sum(len(t["x"]) for t in marks) == 2  # one per event
    by_status = {t["meta"]["status"]: t for t in marks}
    assert by_status["failed"]["marker"]["color"] == charts.PALETTES["light"]["failed"]
    assert by_status["failed"]["text"] == ["posted"]
    assert "M7-021" in by_status["failed"]["hovertext"][0]
    assert by_status["ok"]["marker"]["color"] == charts.PALETTES["light"]["ok"]
    assert figure["layout"]["yaxis"]["ticktext"] == ["MES", "ERP"]


def test_swimlane_labels_time_between_milestones(bob_client, samples):
    html = bob_client.get(detail_url("order_release", "PO-1000123")).content.decode()
    figure = figure_in(html)
    marks = [t for t in figure["data"] if "markers" in t.get("mode", "")]
    assert sum(len(t["x"]) for t in marks) == 3
    labels = [a["text"] for a in figure["layout"]["annotations"]]
    assert labels == ["released → received <b>2 s</b>", "received → acknowledged <b>34 s</b>"]
    # Each written under the later milestone: received (MW lane), acknowledged (MES lane).
    yaxis = figure["layout"]["yaxis"]
    lanes = dict(zip(yaxis["tickvals"], yaxis["ticktext"], strict=True))
    assert [lanes[a["y"]] for a in figure["layout"]["annotations"]] == ["MW", "MES"]
    assert figure["layout"]["yaxis"]["ticktext"] == ["ERP", "MW", "MES"]
    assert figure["layout"]["xaxis"]["title"]["text"] == "Time (Europe/Berlin)"
    # Plotted at the plant's wall-clock time.
    assert marks[0]["x"][0].startswith("2026-11-20T06:00:05")


def test_retrying_events_are_amber_and_do_not_fail_the_transaction(bob_client, samples):
    html = bob_client.get(detail_url("production_confirmation", "CF-88412-10")).content.decode()
    assert '<span class="badge state-completed">Completed</span>' in html
    assert '<span class="badge status-retrying">Retrying</span>' in html
    assert "ERP OData service unavailable" in html
    figure = figure_in(html)
    retrying = [t for t in figure["data"] if t.get("meta", {}).get("status") == "retrying"]
    assert retrying[0]["marker"]["color"] == charts.PALETTES["light"]["retrying"]


def test_detail_links_the_order_journey_across_flows(bob_client, samples):
    html = bob_client.get(detail_url("order_release", "PO-1000123")).content.decode()
    journey = html[html.index('id="journey-h"') :]
    for flow, correlation_id in [
        ("material_consumption", "GI-88412-7"),
        ("production_confirmation", "CF-88412-10"),
        ("goods_receipt", "GR-1000123-1"),
    ]:
        assert f'href="{detail_url(flow, correlation_id)}"' in journey
    assert "(this one)" in journey
    assert "PO-1000124" not in journey
    # In business order: release before consumption before confirmation before goods receipt.
    positions = [journey.index(c) for c in ("PO-1000123", "GI-88412", "CF-88412", "GR-1000123")]
    assert positions == sorted(positions)


def test_transaction_without_relatives_says_so(bob_client, samples):
    html = bob_client.get(
        detail_url("shipment_confirmation", "DLV-80011234", "P200")
    ).content.decode()
    assert "No other transaction shares a business key with this one yet." in html


def test_correlation_ids_with_slashes_open(bob_client, p100):
    ingest_events([event(correlation_id="MW/2026/0042")])
    response = bob_client.get(detail_url("order_release", "MW/2026/0042"))
    assert response.status_code == 200
    assert "<code>MW/2026/0042</code>" in response.content.decode()


def test_unknown_transaction_is_404(bob_client, samples):
    assert bob_client.get(detail_url("order_release", "PO-NOPE")).status_code == 404
    assert bob_client.get(detail_url("no_such_flow", "PO-1000123")).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client, samples):
    for url in (reverse("transaction-search"), detail_url("order_release", "PO-1000123")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


# ── Chart helpers ───────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (36, "36 s"),
        (60, "1 min"),
        (252, "4 min 12 s"),
        (7500, "2 h 5 min"),
        (3 * 86400 + 4 * 3600 + 59, "3 d 4 h"),
        (-5, "−5 s"),
    ],
)
def test_format_duration(seconds, text):
    assert charts.format_duration(timedelta(seconds=seconds)) == text


def test_a_fan_out_milestone_shows_each_target_and_which_is_missing(client, alice, p100):
    at = datetime.now(UTC) - timedelta(minutes=30)

    def hop(step, source, target, seconds):
        return event(
            step, flow="quality_hold", correlation_id="NC-5", source=source, target=target,
            at=at + timedelta(seconds=seconds), business_keys={"lot": "L-5"},
        )  # fmt: skip

    result = ingest_events(
        [
            hop("hold_applied", "QMS", "ERP", 0),
            hop("hold_propagated", "MW", "ERP", 20),
            hop("hold_propagated", "MW", "MES", 40),
        ]
    )
    assert result.accepted == 3, result.rejected
    client.force_login(alice)
    html = client.get(detail_url("quality_hold", "NC-5")).content.decode()
    section = html[html.index('id="milestones-h"') : html.index('id="timeline-h"')]
    propagated = section[section.index("hold_propagated") :]
    propagated = propagated[: propagated.index("</li>")]
    assert "not yet reached" in propagated  # ERP and MES have it, WMS does not
    assert "ERP ✓" in propagated and "MES ✓" in propagated
    assert '<span class="badge status-failed">WMS missing</span>' in propagated
