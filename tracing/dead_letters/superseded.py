"""Superseded: an open dead letter whose transaction later reached its milestone (replaying it
would post twice)."""

from collections import namedtuple
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from tracing.ingest.sql import server_bound_cursor
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


SUPERSEDED_TEXT = "Its transaction reached this milestone after it failed."


def _mark(ids, now):
    """Mark these letters superseded, with a line in the audit trail of each one this marks (a
    letter another sweep marked meanwhile keeps its one line)."""
    if not ids:
        return
    if connection.vendor == "postgresql":
        # One statement, part of the caller's transaction (an ingest batch, a sweep's chunk).
        letters, changes = DeadLetter._meta.db_table, DeadLetterChange._meta.db_table
        with server_bound_cursor() as cursor:
            cursor.execute(
                f"WITH marked AS (UPDATE {letters} SET superseded_at = %s, updated_at = %s "
                "WHERE id = ANY(%s) AND superseded_at IS NULL RETURNING id) "
                f"INSERT INTO {changes} (dead_letter_id, at, kind, from_state, to_state, text) "
                "SELECT id, %s, %s, '', '', %s FROM marked",
                [now, now, list(ids), now, DeadLetterChange.Kind.SUPERSEDED.value, SUPERSEDED_TEXT],
            )
        return
    with transaction.atomic(savepoint=False):  # SQLite: one writer at a time
        unmarked = DeadLetter.objects.filter(id__in=ids, superseded_at__isnull=True)
        marked = list(unmarked.values_list("id", flat=True))
        DeadLetter.objects.filter(id__in=marked).update(superseded_at=now, updated_at=now)
        kind = DeadLetterChange.Kind.SUPERSEDED
        DeadLetterChange.objects.bulk_create(
            DeadLetterChange(dead_letter_id=i, at=now, kind=kind, text=SUPERSEDED_TEXT)
            for i in marked
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
