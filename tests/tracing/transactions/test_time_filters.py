"""Time filters at the ends of the calendar give a 400 naming the field or an empty result,
never a 500 (year 1 or 9999 with an offset cannot be turned into UTC)."""

import pytest

from monitoring.models import SLO

pytestmark = pytest.mark.django_db

PAGES_AND_APIS = [
    "/transactions/?from={v}",
    "/transactions/?to={v}",
    "/api/v1/transactions?from={v}",
    "/api/v1/transactions?to={v}",
    "/api/v1/slos/{slo}?from={v}",
    "/api/v1/slos/{slo}?to={v}",
    "/plants/P100/?range=custom&from={v}&to=0001-01-03T00:00",
    "/plants/P100/slos/order-release-latency/?range=custom&from={v}&to=0001-01-03T00:00",
]
EDGES = ["0001-01-01T00:00:00%2B01:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00"]


@pytest.mark.parametrize("url", PAGES_AND_APIS)
@pytest.mark.parametrize("value", EDGES)
def test_a_time_at_the_end_of_the_calendar_is_refused_or_empty(client, alice, p100, url, value):
    client.force_login(alice)
    slo = SLO.objects.get(slug="order-release-latency").pk
    response = client.get(url.format(v=value, slo=slo))
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 400 and response["Content-Type"].startswith("application/json"):
        assert {"from", "to"} & set(response.json())


@pytest.mark.parametrize(
    "url", ["/transactions/?q=PO%00", "/api/v1/transactions?q=PO%00", "/api/v1/dead-letters?q=%00"]
)
def test_a_nul_in_a_query_is_refused_naming_the_parameter(client, alice, p100, url):
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 400 and "q" in response.json()
