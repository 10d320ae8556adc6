"""Replay in two clicks: the preview opens in place on the dead letter, the transaction and the
group page, and its confirm sends it; only people who may replay are offered it."""

import re

import pytest

from monitoring.models import Replay
from tests.events import dead_letter, event
from tracing.dead_letters.reports import report_dead_letter
from tracing.ingest.pipeline import ingest_events

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def hx_get(page, html):
    """The hx-get URL of the element with that id."""
    return re.search(rf'id="{page}"[^>]*hx-get="([^"]+)"', html)[1]


def test_the_dead_letter_page_opens_the_preview_in_place_and_confirm_queues_it(
    client, dave, mes_target
):
    letter = dead_letter("PO-21")
    client.force_login(dave)
    page = client.get(f"/dead-letters/{letter.pk}/").content.decode()
    assert 'id="replay-slot"' in page
    panel = client.get(hx_get("open-replay", page), **HTMX)
    html = panel.content.decode()
    assert "<html" not in html  # a fragment for the slot
    assert "Exactly what will be sent" in html and f"hub-dl-{letter.id}-v1" in html
    assert "&quot;Routing&quot;: &quot;R-4712-02&quot;" in html  # the body it will send
    action = re.search(r'<form method="post" action="([^"]+)"', html)[1]
    response = client.post(action, {"confirm": "1", "reason": "", "next": ""})
    assert response.status_code == 302 and response["Location"] == f"/dead-letters/{letter.pk}/"
    replay = Replay.objects.get(dead_letter=letter)
    assert (replay.state, replay.requested_by, replay.idempotency_key) == (
        "queued", dave, f"hub-dl-{letter.id}-v1",
    )  # fmt: skip


def test_a_replayed_letter_offers_replay_again_which_needs_a_reason(client, dave, mes_target):
    letter = dead_letter("PO-22")
    letter.state = "replayed"
    letter.save(update_fields=["state"])
    Replay.objects.create(
        dead_letter=letter, target=letter.target, requested_by=dave, requested_at=letter.created_at,
        payload=letter.payload, payload_version=1, idempotency_key=f"hub-dl-{letter.id}-v1",
        state="succeeded", business_key="order:1", not_before=letter.created_at,
    )  # fmt: skip
    client.force_login(dave)
    page = client.get(f"/dead-letters/{letter.pk}/").content.decode()
    assert "Replay again…" in page
    html = client.get(hx_get("open-replay", page), **HTMX).content.decode()
    assert f"hub-dl-{letter.id}-v1-r2" in html and "round 2" in html
    assert re.search(r'name="reason"[^>]*required', html)
    refused = client.post(f"/dead-letters/{letter.pk}/replay/", {"confirm": "1"})
    assert refused.status_code == 200 and "Say why it should be sent again" in refused.text
    assert Replay.objects.filter(dead_letter=letter).count() == 1
    client.post(f"/dead-letters/{letter.pk}/replay/", {"confirm": "1", "reason": "MES restore"})
    assert Replay.objects.filter(dead_letter=letter).latest("id").reason == "MES restore"


def test_the_transaction_page_shows_the_failed_hops_dead_letter_and_replays_in_place(
    client, dave, mes_target
):
    letter = dead_letter("PO-23")
    url = letter.transaction.get_absolute_url()
    client.force_login(dave)
    page = client.get(url).content.decode()
    row = page[page.index(f'id="event-{letter.event_id}"') :]
    row = row[: row.index("</tr>")]
    assert f'href="/dead-letters/{letter.pk}/"' in row and "dl-new" in row
    link = re.search(r'hx-get="([^"]+)"', row)[1].replace("&amp;", "&")
    html = client.get(link, **HTMX).content.decode()
    assert "Exactly what will be sent" in html
    next_url = re.search(r'name="next" value="([^"]+)"', html)[1].replace("&amp;", "&")
    assert next_url == url
    response = client.post(f"/dead-letters/{letter.pk}/replay/", {"confirm": "1", "next": next_url})
    assert response["Location"] == url  # back to the transaction, which shows it queued
    assert "Replay queued" in client.get(url).text
    # a link elsewhere is not followed
    letter2 = dead_letter("PO-24")
    response = client.post(
        f"/dead-letters/{letter2.pk}/replay/", {"confirm": "1", "next": "https://evil.example/"}
    )
    assert response["Location"] == f"/dead-letters/{letter2.pk}/"


def test_supervisors_see_the_dead_letter_but_are_not_offered_a_replay(client, bob, p100):
    letter = dead_letter("PO-25")
    client.force_login(bob)
    page = client.get(letter.transaction.get_absolute_url()).text
    assert f'href="/dead-letters/{letter.pk}/"' in page and "Replay…" not in page
    assert "Replay…" not in client.get(f"/dead-letters/{letter.pk}/").text
    response = client.get(f"/dead-letters/{letter.pk}/replay/", **HTMX)
    assert response.status_code == 403


def test_a_group_page_offers_replay_all_in_business_order_confirmed_in_place(
    client, dave, mes_target
):
    letters = [dead_letter(f"PO-3{n}", order=str(n)) for n in range(3)]
    fingerprint = letters[0].fingerprint
    client.force_login(dave)
    page = client.get(f"/dead-letters/?fingerprint={fingerprint}").text
    assert "Replay all 3 in business order…" in page
    form = page[page.index('class="group-replay"') - 200 :]
    assert 'hx-target="#group-replay-slot"' in form
    confirm = client.post(
        "/dead-letters/bulk/",
        {"action": "replay", "scope": "filter", "fingerprint": fingerprint, "state": "open"},
        **HTMX,
    )
    html = confirm.text
    assert "<html" not in html and "This will replay <strong>3</strong>" in html
    assert Replay.objects.count() == 0  # nothing sent before the confirm
    done = client.post(
        "/dead-letters/bulk/",
        {
            "action": "replay", "scope": "filter", "fingerprint": fingerprint,
            "state": "open", "confirm": "1",
        },
    )  # fmt: skip
    assert done.status_code == 302 and "/dead-letters/bulk/" in done["Location"]
    assert Replay.objects.filter(dead_letter__in=letters).count() == 3


def test_a_dead_letter_middleware_reported_shows_on_its_transaction(client, dave, mes_target):
    ingest_events([event("released", correlation_id="PO-40")])
    reported = report_dead_letter(
        {
            "id": "mw-40",
            "correlation_id": "PO-40",
            "flow": "order_release",
            "source": "MW",
            "target": "MES",
            "plant": "P100",
            "error": {"class": "transient", "code": "HTTP_503", "message": "MES unavailable"},
            "payload": {"order": "40"},
        }
    ).dead_letter
    client.force_login(dave)
    page = client.get(reported.transaction.get_absolute_url()).text
    entry = page[page.index(f'id="dead-letter-{reported.pk}"') :]
    entry = entry[: entry.index("</li>")]
    assert "MW → MES" in entry and "HTTP_503" in entry and "dl-new" in entry
    assert f"/dead-letters/{reported.pk}/replay/?next=" in entry and "Replay…" in entry
