"""A transaction's flow and plant are kept by Django's PROTECT, not by database constraints:
a foreign-key check per new transaction at every commit was a tenth of the database's CPU in
an ingest batch, and validation has already checked both against the catalog."""

import pytest
from django.db import connection
from django.db.models import ProtectedError

from integration_hub.models import Flow, Plant
from tests.events import event
from tracing.ingest.pipeline import ingest_events
from tracing.models import Transaction

pytestmark = pytest.mark.django_db


def foreign_keys(table):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {tuple(c["columns"]): c["foreign_key"] for c in constraints.values() if c["foreign_key"]}


def test_the_transaction_table_has_no_constraint_on_its_catalog_references():
    keys = foreign_keys(Transaction._meta.db_table)
    assert ("flow_id",) not in keys
    assert ("plant_id",) not in keys


def test_a_flow_or_plant_with_transactions_cannot_be_deleted(p100):
    assert ingest_events([event(event_id="kept-1")]).accepted == 1
    txn = Transaction.objects.get()
    with pytest.raises(ProtectedError):
        Flow.objects.get(pk=txn.flow_id).delete()
    with pytest.raises(ProtectedError):
        Plant.objects.get(pk=txn.plant_id).delete()
    assert Transaction.objects.filter(pk=txn.pk, flow_id=txn.flow_id, plant_id=p100.pk).exists()
