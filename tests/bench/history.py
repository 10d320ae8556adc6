"""Longer history for the dashboard bench, set-based: copies of the loaded span further back.

Ingesting through the real pipeline runs at a few thousand events a second on a small
machine, so 10 million events over 90 days would take the better part of an hour. Instead the
span the bench ingested (28 days ending now) is copied back in time, whole hours at a time,
by INSERT … SELECT inside PostgreSQL: transactions (milestone times shifted), their events,
business keys, dead letters and SLO outcomes, with new ids, correlation and event ids. The
rollups of the copies are then built from their outcomes by the product's own code
(monitoring.slo.outcomes.recompute_rollups), so every figure a page reads is what the hub
would have computed from those events.
"""

import math
import time
from datetime import timedelta

from django.db import connection

SUFFIX = "~h{k}"  # appended to correlation, event and dead-letter ids of copy k


def _iso(column, shift):
    """SQL for a JSON object of milestone → ISO time, each time moved back by `shift`."""
    return f"""(SELECT coalesce(jsonb_object_agg(key, to_char(
                    (value::timestamptz - {shift}) AT TIME ZONE 'UTC',
                    'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')), '{{}}'::jsonb)
                FROM jsonb_each_text({column}))"""


def _copy_statements(k, cutoff_sql):
    """The INSERT … SELECTs of copy `k`: rows of the original span moved back k × span."""
    shift = "%(shift)s::interval"
    keep = f"t.id <= %(txn_max)s AND t.first_seen - {shift} >= {cutoff_sql}"
    suffix = SUFFIX.format(k=k)
    return [
        (
            "transactions",
            f"""INSERT INTO tracing_transaction (id, correlation_id, state, business_keys,
                    first_seen, last_seen, first_event_id, milestones, milestones_last_ok,
                    milestone_systems, failure_at, failure_step, failure_event_id, last_error,
                    event_count, completed_at, stuck_at, updated_at, flow_id, plant_id)
                SELECT t.id + %(txn_off)s, t.correlation_id || '{suffix}', t.state,
                    t.business_keys, t.first_seen - {shift}, t.last_seen - {shift},
                    t.first_event_id || '{suffix}', {_iso("t.milestones", shift)},
                    {_iso("t.milestones_last_ok", shift)}, '{{}}'::jsonb, t.failure_at - {shift},
                    t.failure_step,
                    CASE WHEN t.failure_event_id = '' THEN '' ELSE t.failure_event_id
                        || '{suffix}' END,
                    t.last_error, t.event_count, t.completed_at - {shift},
                    t.stuck_at - {shift}, t.updated_at - {shift}, t.flow_id, t.plant_id
                FROM tracing_transaction t WHERE {keep}""",
        ),
        (
            "events",
            f"""INSERT INTO tracing_traceevent (id, event_id, correlation_id, step, status,
                    occurred_at, received_at, business_keys, error_class, error_code,
                    error_message, payload, attributes, flow_id, plant_id, source_id,
                    target_id, transaction_id)
                SELECT e.id + %(event_off)s, e.event_id || '{suffix}',
                    e.correlation_id || '{suffix}', e.step, e.status,
                    e.occurred_at - {shift}, e.received_at - {shift}, e.business_keys,
                    e.error_class, e.error_code, e.error_message, e.payload, e.attributes,
                    e.flow_id, e.plant_id, e.source_id, e.target_id,
                    e.transaction_id + %(txn_off)s
                FROM tracing_traceevent e JOIN tracing_transaction t ON t.id = e.transaction_id
                WHERE {keep}""",
        ),
        (
            "business keys",
            f"""INSERT INTO tracing_businesskey (name, value, transaction_id)
                SELECT b.name, b.value, b.transaction_id + %(txn_off)s
                FROM tracing_businesskey b JOIN tracing_transaction t ON t.id = b.transaction_id
                WHERE {keep}""",
        ),
        (
            "dead letters",
            f"""INSERT INTO tracing_deadletter (id, external_id, event_id, transaction_id,
                    fingerprint, state, flow_id, plant_id, source_id, target_id,
                    correlation_id, step, error_class, error_code, error_message, payload,
                    headers, attempts, first_failed_at, last_failed_at, created_at, closed_at,
                    updated_at, business_keys, business_key, superseded_at, payload_version,
                    edited_payload)
                SELECT d.id + %(dl_off)s, d.external_id || '{suffix}',
                    d.event_id + %(event_off)s, d.transaction_id + %(txn_off)s,
                    d.fingerprint, d.state, d.flow_id, d.plant_id, d.source_id, d.target_id,
                    d.correlation_id || '{suffix}', d.step, d.error_class, d.error_code,
                    d.error_message, d.payload, d.headers, d.attempts,
                    d.first_failed_at - {shift}, d.last_failed_at - {shift},
                    d.created_at - {shift}, d.closed_at - {shift}, d.updated_at - {shift},
                    d.business_keys, d.business_key, d.superseded_at - {shift},
                    d.payload_version, d.edited_payload
                FROM tracing_deadletter d JOIN tracing_transaction t ON t.id = d.transaction_id
                WHERE d.id <= %(dl_max)s AND {keep}""",
        ),
        (
            "outcomes",
            f"""INSERT INTO monitoring_outcome (slo_id, plant_id, transaction_id,
                    dead_letter_id, at, minute, good, latency, pending)
                SELECT o.slo_id, o.plant_id, o.transaction_id + %(txn_off)s,
                    o.dead_letter_id + %(dl_off)s, o.at - {shift}, o.minute - {shift},
                    o.good, o.latency, o.pending
                FROM monitoring_outcome o
                JOIN tracing_transaction t
                  ON t.id = coalesce(o.transaction_id,
                                     (SELECT transaction_id FROM tracing_deadletter
                                      WHERE id = o.dead_letter_id))
                WHERE o.id <= %(outcome_max)s AND {keep}""",
        ),
    ]


def extend(history_days, *, log):
    """Copy the loaded span back until the data covers `history_days` (whole copies, the last
    one cut at the start of the history). Returns the events added."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(first_seen), max(last_seen), now() FROM tracing_transaction")
        first, last, now = cursor.fetchone()
        # Whole hours, and a little more than the span, so copies neither overlap nor break
        # an hour (hour rollups of a copy hold exactly that copy's minutes).
        span = timedelta(hours=math.ceil((last - first) / timedelta(hours=1)) + 1)
        copies = math.ceil((timedelta(days=history_days) - (now - first)) / span)
        if copies <= 0:
            log(f"the data already covers {history_days} days")
            return 0
        maxima = {}
        for name, table in (
            ("txn", "tracing_transaction"),
            ("event", "tracing_traceevent"),
            ("dl", "tracing_deadletter"),
            ("outcome", "monitoring_outcome"),
        ):
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
            maxima[name] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM tracing_traceevent")
        before = cursor.fetchone()[0]
        for k in range(1, copies + 1):
            params = {f"{name}_max": top for name, top in maxima.items()}
            params |= {f"{name}_off": k * (top + 1) for name, top in maxima.items()}
            params["shift"] = f"{int((k * span).total_seconds())} seconds"
            params["cutoff"] = now - timedelta(days=history_days)
            for what, sql in _copy_statements(k, "%(cutoff)s"):
                started = time.monotonic()
                cursor.execute(sql, params)
                log(
                    f"copy {k}/{copies} ({k * span.days} days back): {cursor.rowcount:,} "
                    f"{what} in {time.monotonic() - started:.0f} s"
                )
        for table in ("tracing_transaction", "tracing_traceevent", "tracing_deadletter"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        cursor.execute("SELECT count(*) FROM tracing_traceevent")
        added = cursor.fetchone()[0] - before
    _rollups_of_copies(maxima["outcome"], log=log)
    return added


def _rollups_of_copies(outcome_max, *, log):
    """Minute and hour rollups of the copied outcomes, by the product's own code."""
    from monitoring.models import Outcome
    from monitoring.slo import outcomes

    started = time.monotonic()
    dirty = set(
        Outcome.objects.filter(id__gt=outcome_max, pending=False)
        .values_list("slo_id", "plant_id", "minute")
        .distinct()
    )
    outcomes.recompute_rollups(dirty)
    log(f"rollups of the copies: {len(dirty):,} minutes in {time.monotonic() - started:.0f} s")
