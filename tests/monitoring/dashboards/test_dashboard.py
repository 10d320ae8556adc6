"""Plant dashboards: who sees which plant, what the numbers count, and the HTMX partials."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from integration_hub.models import Plant
from monitoring.dashboards import overview, windows
from monitoring.slo.evaluation import run_evaluation
from tests.events import event, failed
from tracing.ingest.pipeline import ingest_events
from tracing.models import DeadLetter

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def ago(**delta):
    return timezone.now() - timedelta(**delta)


def zone_at_noon():
    """A fixed-offset IANA zone whose local hour is 12 (±1) now: Etc/GMT+N is N hours behind."""
    behind = timezone.now().hour - 12
    return f"Etc/GMT{behind:+d}" if behind else "Etc/GMT"


def release(corr, at, *, ack_after=None, plant="P100"):
    """An order release at `at`, acknowledged `ack_after` seconds later (or never)."""
    events = [event("released", correlation_id=corr, at=at, plant=plant, event_id=f"{corr}-r")]
    if ack_after is not None:
        events.append(
            event(
                "acknowledged",
                correlation_id=corr,
                at=at + timedelta(seconds=ack_after),
                plant=plant,
                source="MES",
                target="ERP",
                event_id=f"{corr}-a",
            )
        )
    return events


@pytest.fixture
def traffic(p100, p200):
    """P100: two good releases, one stuck for two hours, one failed with a dead letter.
    P200: one good release (P200-ONLY-1). Both plants keep a zone where it is about noon, so
    that "completed today" holds what happened in the last hours whenever the suite runs."""
    Plant.objects.filter(pk__in=[p100.pk, p200.pk]).update(timezone=zone_at_noon())
    events = [
        *release("PO-GOOD-1", ago(minutes=20), ack_after=5),
        *release("PO-GOOD-2", ago(minutes=15), ack_after=8),
        *release("PO-STUCK-1", ago(hours=2)),
        *release("P200-ONLY-1", ago(minutes=10), ack_after=4, plant="P200"),
        event("released", correlation_id="PO-FAIL-1", at=ago(minutes=50), event_id="f-r"),
        failed(
            "received",
            correlation_id="PO-FAIL-1",
            at=ago(minutes=49),
            source="MW",
            code="ROUTING_NOT_FOUND",
            error_class="master_data",
            payload={"order": "1"},
            event_id="f-x",
        ),
    ]
    result = ingest_events(events)
    assert not result.rejected, result.rejected
    run_evaluation()
    return result


def page(client, url, **extra):
    response = client.get(url, **extra)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def flow_row(html, flow):
    match = re.search(rf'<tr[^>]*data-flow="{flow}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, f"no row for {flow}"
    return match.group(1)


def count_link(row_html, name):
    """(href, number) of the count link named `name` in a flow row."""
    match = re.search(rf'<a href="([^"]+)" class="[^"]*" data-count="{name}">(\d+)</a>', row_html)
    assert match, f"no {name} count"
    return match.group(1).replace("&amp;", "&"), int(match.group(2))


def query_of(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# ── Access ─────────────────────────────────────────────────────────────────────────────────


def test_a_supervisor_sees_the_overview_of_an_assigned_plant(client, bob, traffic):
    client.force_login(bob)
    html = page(client, reverse("plant-overview", args=["P100"]))
    assert "Plant 100 Stuttgart" in html
    assert 'data-slo="order-release-latency"' in html


@pytest.mark.parametrize(
    "name,args",
    [
        ("plant-overview", ["P100"]),
        ("plant-wall", ["P100"]),
        ("plant-slo", ["P100", "order-release-latency"]),
    ],
)
def test_another_plants_pages_are_refused_without_its_data(client, carol, traffic, name, args):
    client.force_login(carol)
    for extra in ({}, HTMX):
        response = client.get(reverse(name, args=args), **extra)
        assert response.status_code == 403
        html = response.content.decode()
        assert "not assigned to plant P100" in html
        assert "PO-STUCK-1" not in html and "data-slo=" not in html


def test_an_unknown_plant_is_not_found(client, alice, traffic):
    client.force_login(alice)
    assert client.get(reverse("plant-overview", args=["P999"])).status_code == 404
    assert client.get(reverse("plant-slo", args=["P100", "no-such-slo"])).status_code == 404


def test_signed_out_people_are_sent_to_log_in(client, traffic):
    response = client.get(reverse("plant-overview", args=["P100"]))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/plants/P100/")


def test_a_poll_after_the_session_expired_redirects_the_whole_page(client, traffic):
    """An HTMX poll must not swap the login form into a panel."""
    response = client.get(
        reverse("plant-overview", args=["P100"]),
        HTTP_HX_CURRENT_URL="http://testserver/plants/P100/?range=1h",
        **HTMX,
    )
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Fplants%2FP100%2F%3Frange%3D1h"
    assert "data-slo=" not in response.content.decode()
    home = client.get(reverse("home"), **HTMX)
    assert home["HX-Redirect"].startswith("/accounts/login/")


def test_all_plants_lists_only_the_plants_a_person_may_see(client, alice, carol, traffic):
    client.force_login(carol)
    html = page(client, reverse("home"))
    assert 'data-plant="P200"' in html and 'data-plant="P100"' not in html
    client.force_login(alice)
    html = page(client, reverse("home"))
    assert 'data-plant="P100"' in html and 'data-plant="P200"' in html


def test_signed_out_landing_page_shows_no_plant_data(client, traffic):
    html = page(client, reverse("home"))
    assert "Log in" in html and "data-plant=" not in html
    assert "released → received → acknowledged" in html


# ── What the numbers count ─────────────────────────────────────────────────────────────────


def test_flow_counts_link_to_the_lists_behind_them(client, bob, traffic):
    client.force_login(bob)
    html = page(client, reverse("plant-overview", args=["P100"]))
    row = flow_row(html, "order_release")
    href, stuck = count_link(row, "stuck")
    assert stuck == 1
    assert query_of(href) == {"plant": "P100", "flow": "order_release", "state": "stuck"}
    listed = page(client, href)
    assert "PO-STUCK-1" in listed and "PO-GOOD-1" not in listed
    href, failed_count = count_link(row, "failed")
    assert failed_count == 1 and query_of(href)["state"] == "failed"
    assert "PO-FAIL-1" in page(client, href)
    _, completed = count_link(row, "completed_today")
    assert completed == 2
    # The oldest stuck age opens that transaction's timeline.
    assert reverse("transaction-detail", args=["order_release", "PO-STUCK-1"]) in row


def test_another_plants_transactions_are_not_counted(client, carol, traffic):
    client.force_login(carol)
    html = page(client, reverse("plant-overview", args=["P200"]))
    _, completed = count_link(flow_row(html, "order_release"), "completed_today")
    assert completed == 1
    assert "PO-STUCK-1" not in html


def test_dead_letters_are_counted_by_error_class_and_closed_ones_left_out(client, bob, traffic):
    client.force_login(bob)
    html = page(client, reverse("plant-overview", args=["P100"]))
    assert "/dead-letters/?plant=P100&amp;error_class=master_data" in html
    groups = overview.dead_letters_by_class(Plant.objects.get(code="P100"))
    assert [(g["error_class"], g["count"]) for g in groups] == [("master_data", 1)]
    DeadLetter.objects.update(state="resolved")
    assert overview.dead_letters_by_class(Plant.objects.get(code="P100")) == []


def test_completed_today_follows_the_plants_time_zone(p100):
    """Berlin is UTC+1 in November: 23:30 UTC is already tomorrow at the plant."""
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    yesterday_berlin = datetime(2026, 11, 22, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    today_berlin = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)  # 00:30 in Berlin
    ingest_events(
        release("PO-Y", yesterday_berlin, ack_after=5) + release("PO-T", today_berlin, ack_after=5),
        now=now,
    )
    window = windows.Window("24h", now - timedelta(hours=24), now)
    rows = {r.flow.code: r for r in overview.flow_rows(p100, window, now)}
    assert rows["order_release"].completed_today == 1


def test_stuck_quality_holds_are_listed_oldest_first_with_their_age(client, bob, p100):
    holds = [
        event(
            "hold_applied",
            flow="quality_hold",
            correlation_id=f"NC-{n}",
            source="QMS",
            target="ERP",
            at=ago(hours=hours),
            business_keys={"lot": f"LOT-{n}", "nonconformance": f"NC-{n}"},
        )
        for n, hours in ((1, 5), (2, 9))
    ]
    ingest_events(holds)
    client.force_login(bob)
    html = page(client, reverse("plant-overview", args=["P100"]))
    section = html[html.index('id="holds-h"') : html.index('id="dl-h"')]
    assert section.index("NC-2") < section.index("NC-1")
    assert "LOT-2" in section and "9 h" in section


def test_a_tile_turns_breaching_when_releases_go_unacknowledged(client, bob, traffic):
    client.force_login(bob)
    url = reverse("plant-overview", args=["P100"])
    before = page(client, url, **HTMX)
    # Two old misses of four spend the whole budget, though nothing burns fast right now.
    tile = 'data-slo="order-release-latency" data-state="breaching"'
    assert tile in before
    assert "Breaching: the error budget of the 28-day window is spent" in before
    ingest_events([e for n in range(5) for e in release(f"PO-LATE-{n}", ago(minutes=3 + n / 10))])
    run_evaluation()
    partial = page(client, url, **HTMX)
    assert tile in partial and "Breaching: the error budget burns" in partial
    assert 'class="headline headline-breaching" id="headline"' in partial


def test_the_htmx_poll_gets_the_live_partial_not_the_page(client, bob, traffic):
    client.force_login(bob)
    partial = page(client, reverse("plant-overview", args=["P100"]), **HTMX)
    assert "<html" not in partial and 'class="topbar"' not in partial
    assert 'data-slo="order-release-latency"' in partial
    assert 'id="release-figure"' in partial
    full = page(client, reverse("plant-overview", args=["P100"]))
    assert 'hx-trigger="every 15s"' in full and "X-CSRFToken" in full
    wall = page(client, reverse("plant-wall", args=["P100"]), **HTMX)
    assert "<html" not in wall and "stuck holds" in wall


def test_the_refresh_interval_comes_from_settings(client, bob, traffic, settings):
    settings.DASHBOARD_REFRESH_SECONDS = 2
    client.force_login(bob)
    assert 'hx-trigger="every 2s"' in page(client, reverse("plant-overview", args=["P100"]))
    assert 'hx-trigger="every 2s"' in page(client, reverse("home"))


def test_the_slo_page_lists_the_worst_transactions(client, bob, traffic):
    ingest_events(release("PO-SLOW-1", ago(minutes=40), ack_after=400))
    run_evaluation()
    client.force_login(bob)
    html = page(client, reverse("plant-slo", args=["P100", "order-release-latency"]))
    assert "released → acknowledged" in html
    assert 'id="history-figure"' in html and 'id="histogram-figure"' in html
    worst = html[html.index('id="worst-h"') :]
    assert reverse("transaction-detail", args=["order_release", "PO-STUCK-1"]) in worst
    assert "PO-SLOW-1" in worst and "6.7 min" in worst
    assert worst.index("PO-STUCK-1") < worst.index("PO-SLOW-1")  # never finished comes first
    assert "PO-GOOD-1" not in worst


# ── Time ranges ────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "params,key,error",
    [
        ({}, "24h", None),
        ({"range": "7d"}, "7d", None),
        ({"range": "forever"}, "24h", "Unknown range"),
        ({"range": "custom", "from": "2026-11-20T06:00", "to": "2026-11-20T18:00"}, "custom", None),
        ({"range": "custom", "from": "yesterday"}, "24h", "Times look like"),
        (
            {"range": "custom", "from": "2026-11-21T06:00", "to": "2026-11-20T06:00"},
            "24h",
            "before",
        ),
        ({"range": "custom"}, "24h", "needs a start"),
    ],
)
def test_time_ranges_are_read_in_the_plants_zone(params, key, error):
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    tz = Plant(timezone="Europe/Berlin").tzinfo
    window, problem = windows.parse_window(params, tz, now)
    assert window.key == key
    assert (problem is None) if error is None else (error in problem)
    if key == "custom":
        assert window.since == datetime(2026, 11, 20, 5, 0, tzinfo=UTC)  # 06:00 in Berlin


def test_a_custom_range_does_not_refresh_and_keeps_its_filters(client, bob, traffic):
    client.force_login(bob)
    since = (timezone.now() - timedelta(hours=3)).astimezone(Plant.objects.get(code="P100").tzinfo)
    html = page(
        client,
        reverse("plant-overview", args=["P100"]),
        data={"range": "custom", "from": since.strftime("%Y-%m-%dT%H:%M")},
    )
    assert "hx-trigger" not in html.split('id="live"')[1].split(">")[0]
    href, _ = count_link(flow_row(html, "order_release"), "failed")
    assert query_of(href)["from"].startswith(since.strftime("%Y-%m-%dT%H:%M"))


# ── Cost ───────────────────────────────────────────────────────────────────────────────────


def _queries(client, url, **extra):
    """SQL statements one request runs (the query log is reset when a request starts)."""
    from django.db import connection

    seen = []

    def counter(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counter):
        assert client.get(url, **extra).status_code == 200
    return len(seen)


def test_the_number_of_queries_does_not_grow_with_the_data(client, alice, traffic):
    client.force_login(alice)
    urls = [
        (reverse("plant-overview", args=["P100"]), {}),
        (reverse("plant-overview", args=["P100"]), HTMX),
        (reverse("plant-wall", args=["P100"]), HTMX),
        (reverse("home"), {}),
        (reverse("plant-slo", args=["P100", "order-release-latency"]), {}),
    ]
    before = [_queries(client, url, **x) for url, x in urls]
    more = []
    for n in range(40):
        more += release(f"PO-MORE-{n}", ago(minutes=50 - n), ack_after=None if n % 3 else 5)
        more.append(
            event(
                "hold_applied",
                flow="quality_hold",
                correlation_id=f"NC-MORE-{n}",
                source="QMS",
                at=ago(hours=6, minutes=n),
            )
        )
    ingest_events(more)
    run_evaluation()
    after = [_queries(client, url, **x) for url, x in urls]
    assert after == before
    assert min(after) >= 5 and max(after) <= 25, after
