"""Superseded: an open dead letter whose transaction later reached its milestone (replaying it
would post twice)."""

from collections import namedtuple
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from tracing.ingest.sql import insert_models
from tracing.models import DeadLetter, DeadLetterChange


def _time_of(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def is_superseded(letter, txn, flow):
    """Whether the transaction reached the letter's milestone (or a later one) after it failed.

    At a fan-out milestone (a hold propagated to ERP, MES and WMS) only the letter's own target
    counts: ERP having the hold does not make WMS's failed copy safe to leave.
    """
    milestones = flow.milestones
    if txn is None or not letter.step or letter.step not in milestones:
        return False
    if letter.step in flow.fan_out_milestones and letter.target_id:
        reached = {
            m: by_system[str(letter.target_id)][1]
            for m, by_system in (txn.milestone_systems or {}).items()
            if str(letter.target_id) in by_system
        }
    else:
        reached = txn.milestones_last_ok or {}
    later = milestones[milestones.index(letter.step) :]
    return any(_time_of(reached[m]) > letter.last_failed_at for m in later if m in reached)


def _open(letters):
    """Letters still open and not yet marked superseded."""
    return letters.filter(state__in=DeadLetter.OPEN_STATES, superseded_at__isnull=True)


def mark_superseded(queryset=None, *, now=None, chunk=1000):
    """Mark open dead letters whose transaction has since reached their milestone; return ids.

    Looks only at open letters not yet marked whose transaction changed after they failed.
    """
    now = now or timezone.now()
    qs = DeadLetter.objects.all() if queryset is None else queryset
    qs = (
        _open(qs)
        .filter(
            transaction__isnull=False,
            transaction__updated_at__gt=F("last_failed_at"),
        )
        .select_related("transaction", "flow")
        .only(
            "id",
            "state",
            "step",
            "last_failed_at",
            "target",
            "flow__milestones",
            "flow__fan_out_milestones",
            "transaction__milestones_last_ok",
            "transaction__milestone_systems",
            "transaction__updated_at",
        )  # fmt: skip
        .order_by("id")
    )
    # The sweep over every letter streams (a server-side cursor: three round trips); a given
    # selection (one ingest batch's transactions, one bulk replay) is read in one.
    letters = qs.iterator(chunk_size=chunk) if queryset is None else qs
    marked = [
        letter.id for letter in letters if is_superseded(letter, letter.transaction, letter.flow)
    ]
    for start in range(0, len(marked), chunk):
        _mark(marked[start : start + chunk], now)
    return marked


def _mark(ids, now):
    """Mark these letters superseded, with a line in each one's audit trail."""
    if not ids:
        return
    # Its own transaction, or part of the caller's (an ingest batch): no savepoint round trips.
    with transaction.atomic(savepoint=False):
        DeadLetter.objects.filter(id__in=ids, superseded_at__isnull=True).update(
            superseded_at=now, updated_at=now
        )
        insert_models(
            [
                DeadLetterChange(
                    dead_letter_id=i,
                    at=now,
                    kind="superseded",
                    text="Its transaction reached this milestone after it failed.",
                )  # fmt: skip
                for i in ids
            ]
        )


def mark_superseded_of(txns, flows, *, now=None):
    """mark_superseded for one ingest batch's transactions, as just folded (`txns`, in memory,
    about to be written; `flows` by id: the milestones and fan-out milestones of each): their
    open letters are read in one lean query and judged against these rows, not read back."""
    now = now or timezone.now()
    by_id = {t.id: t for t in txns}
    marked = []
    for letter in _open_letters_of(list(by_id)):
        txn = by_id[letter.transaction_id]
        flow = flows[txn.flow_id]
        if txn.updated_at > letter.last_failed_at and is_superseded(letter, txn, flow):
            marked.append(letter.id)
    _mark(marked, now)
    return marked


Letter = namedtuple("Letter", "id transaction_id step target_id last_failed_at")


def _open_letters_of(transaction_ids):
    if not transaction_ids:
        return []
    if connection.vendor != "postgresql":
        letters = _open(DeadLetter.objects.filter(transaction_id__in=transaction_ids))
        return [Letter(*row) for row in letters.values_list(*Letter._fields).order_by("id")]
    # One array parameter: Django's IN list of a batch's ids cost more than the query.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(Letter._fields)} FROM {DeadLetter._meta.db_table} "
            "WHERE transaction_id = ANY(%s) AND state = ANY(%s) AND superseded_at IS NULL "
            "ORDER BY id",
            [transaction_ids, list(DeadLetter.OPEN_STATES)],
        )
        return [Letter(*row) for row in cursor.fetchall()]
