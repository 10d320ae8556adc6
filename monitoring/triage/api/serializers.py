"""Dead letters as the API reads them: plain functions over rows (the list is a hot path)."""

from monitoring.replay.preview import mask_headers
from monitoring.triage.impact import letter_impact


def _iso(moment):
    return moment.isoformat() if moment else None


# What a replay's target answered, and where it lives: for people who may triage only (a URL
# may carry credentials, a response excerpt another system's data).
DELIVERY_DETAILS = ("url", "response_excerpt", "error")


def _without_delivery(data):
    return {k: v for k, v in data.items() if k not in DELIVERY_DETAILS}


def attempt_data(a):
    return {
        "number": a.number,
        "at": _iso(a.started_at),
        "payload_version": a.payload_version,
        "url": a.url,
        "status_code": a.status_code,
        "response_excerpt": a.response_excerpt,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "outcome": a.outcome,
    }


def replay_data(r, *, delivery=True):
    data = {
        "id": r.id,
        "state": r.state,
        "requested_by": r.requested_by.get_username() if r.requested_by else None,
        "requested_at": _iso(r.requested_at),
        "reason": r.reason,
        "payload_version": r.payload_version,
        "idempotency_key": r.idempotency_key,
        "target": r.target.code,
        "bulk": str(r.bulk_id) if r.bulk_id else None,
        "status_code": r.status_code,
        "response_excerpt": r.response_excerpt,
        "error": r.error,
        "finished_at": _iso(r.finished_at),
        "attempts": [
            attempt_data(a) if delivery else _without_delivery(attempt_data(a))
            for a in r.attempts.all()
        ],
    }
    return data if delivery else _without_delivery(data)


def dead_letter_data(d, *, detail=False, delivery=True):
    """The contract: id, fingerprint, state, flow, plant, source, target, correlation_id, error,
    payload, headers, attempts, first/last_failed_at, assignee, replays (+ a few extras)."""
    data = {
        "id": d.external_id,
        "fingerprint": d.fingerprint,
        "state": d.state,
        "flow": d.flow.code,
        "plant": d.plant.code,
        "source": d.source.code,
        "target": d.target.code if d.target else None,
        "correlation_id": d.correlation_id,
        "step": d.step,
        "error": d.error,
        "payload": d.payload,
        "headers": mask_headers(d.headers),
        "attempts": d.attempts,
        "first_failed_at": _iso(d.first_failed_at),
        "last_failed_at": _iso(d.last_failed_at),
        "assignee": d.assignee.get_username() if d.assignee else None,
        "superseded": d.superseded_at is not None,
        "superseded_at": _iso(d.superseded_at),
        "business_keys": d.business_keys,
        "payload_version": d.payload_version,
        "replays": [replay_data(r, delivery=delivery) for r in d.replays.all()],
    }
    if detail:
        data["edited_payload"] = d.edited_payload if d.payload_version > 1 else None
        data["payload_versions"] = [
            {
                "version": e.version,
                "payload": e.payload,
                "reason": e.reason,
                "edited_by": e.edited_by.get_username() if e.edited_by else None,
                "edited_at": _iso(e.edited_at),
            }
            for e in d.edits.select_related("edited_by")
        ]
        data["history"] = [
            {
                "at": _iso(c.at),
                "by": c.by.get_username() if c.by else None,
                "kind": c.kind,
                "from_state": c.from_state,
                "to_state": c.to_state,
                "assignee": c.assignee.get_username() if c.assignee else None,
                "text": c.text,
            }
            for c in d.changes.select_related("by", "assignee")
        ]
        data["notes"] = [h for h in data["history"] if h["kind"] == "note"]
        data["impact"] = letter_impact(d)
        data["transaction"] = (
            f"/transactions/{d.flow.code}/{d.correlation_id}/" if d.transaction_id else None
        )
    return data


def group_data(row):
    return {
        "fingerprint": row["fingerprint"],
        "count": row["count"],
        "open": row["open"],
        "superseded": row["superseded"],
        "first_seen": _iso(row["first_seen"]),
        "last_seen": _iso(row["last_seen"]),
        "plants": row["plants"],
        "flows": row["flows"],
        "targets": row["targets"],
        "error": row["error"],
        "impact": row["impact"],
    }
