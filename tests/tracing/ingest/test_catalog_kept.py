"""Ingest keeps the catalog it read while the catalog's stamp is unchanged, and reads it again
after any write to plants, systems, flows or a flow's targets, whoever made it."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from integration_hub.models import CatalogStamp, Flow, Plant, System
from tests.events import event
from tracing.ingest.contract import Catalog
from tracing.ingest.pipeline import ingest_events
from tracing.models import Transaction

pytestmark = pytest.mark.django_db


def catalog_reads(queries):
    names = ("integration_hub_flow", "integration_hub_system", "integration_hub_plant")
    return [q["sql"] for q in queries if any(f'FROM "{n}"' in q["sql"] for n in names)]


def test_a_second_batch_reads_only_the_stamp(p100):
    ingest_events([event(event_id="a")])
    with CaptureQueriesContext(connection) as queries:
        result = ingest_events([event(event_id="b")])
    assert result.accepted == 1
    assert catalog_reads(queries.captured_queries) == []
    assert Catalog.current() is Catalog.current()


def test_a_flow_created_after_a_batch_is_known_to_the_next(p100):
    ingest_events([event(event_id="a")])
    Flow.objects.create(
        code="new_flow", name="New", milestones=["released"], completing_milestones=["released"]
    )
    result = ingest_events([event(event_id="b", flow="new_flow")])
    assert (result.accepted, result.rejected) == (1, [])
    assert Transaction.objects.filter(flow__code="new_flow").exists()


def test_a_bulk_update_that_sends_no_signal_still_changes_the_stamp(p100):
    """A queryset update, like raw SQL, bypasses Django's signals; the triggers see it."""
    ingest_events([event(event_id="a")])
    kept = Catalog.current()
    before = CatalogStamp.current()
    Flow.objects.filter(code="order_release").update(stuck_after=timedelta(minutes=1))
    assert CatalogStamp.current() != before
    fresh = Catalog.current()
    assert fresh is not kept
    assert fresh.flows["order_release"].stuck_after == timedelta(minutes=1)


@pytest.mark.parametrize("write", ["system", "plant", "targets", "delete"])
def test_every_catalog_table_changes_the_stamp(p100, write):
    before = CatalogStamp.current()
    flow = Flow.objects.get(code="order_release")
    if write == "system":
        System.objects.create(code="QMS2", name="Second QMS", kind="qms")
    elif write == "plant":
        Plant.objects.create(code="P999", name="Far away")
    elif write == "targets":
        flow.target_systems.add(System.objects.exclude(flows_in=flow).first())
    else:
        Flow.objects.create(
            code="gone", name="Gone", milestones=["x"], completing_milestones=["x"]
        ).delete()
    assert CatalogStamp.current() not in (None, before)


def test_a_change_rolled_back_does_not_leave_its_catalog_kept(p100):
    """A token is random, not a counter: the stamp a rolled-back change wrote never returns."""
    with transaction.atomic():
        Flow.objects.create(
            code="rolled_back", name="Rolled back", milestones=["x"], completing_milestones=["x"]
        )
        assert "rolled_back" in Catalog.current().flows
        transaction.set_rollback(True)
    assert "rolled_back" not in Catalog.current().flows


def test_a_downtime_planned_after_a_batch_stops_the_clock_of_the_next(p100):
    """The downtime calendar is kept with the catalog, and the stamp covers downtime too."""
    from datetime import UTC, datetime

    from integration_hub.models import Downtime

    at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    ingest_events([event(event_id="a", correlation_id="PO-A", at=at)], now=at)
    kept = Catalog.current()
    Downtime.objects.create(plant=p100, start=at, end=at + timedelta(hours=2), reason="Service")
    ingest_events([event(event_id="b", correlation_id="PO-B", at=at)], now=at)
    assert Catalog.current() is not kept
    stuck_after = Flow.objects.get(code="order_release").stuck_after
    a, b = (Transaction.objects.get(correlation_id=c) for c in ("PO-A", "PO-B"))
    assert a.stuck_at == at + stuck_after
    assert b.stuck_at == at + timedelta(hours=2) + stuck_after
