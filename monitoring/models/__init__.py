"""Watching and acting: SLOs and rollups, alerts, triage records and replays."""

from monitoring.models.alerts import (
    SEVERITY_RANK,
    Alert,
    AlertChannel,
    AlertRule,
    AlertTransition,
    Delivery,
    Severity,
    ShiftDigest,
)
from monitoring.models.reconciliation import AgreementRule, ReconciliationException
from monitoring.models.replay import (
    ACTIVE_REPLAY_STATES,
    Replay,
    ReplayAttempt,
    ReplaySlot,
    ReplayState,
)
from monitoring.models.slo import (
    SLO,
    DayRollup,
    HourRollup,
    Outcome,
    Rollup,
    RollupCounts,
    SLOStatus,
    SLOThreshold,
    StuckSummary,
    Watermark,
)
from monitoring.models.triage import BulkAction, OwnerRule, PayloadEdit

__all__ = [
    "ACTIVE_REPLAY_STATES",
    "SEVERITY_RANK",
    "SLO",
    "Alert",
    "AlertChannel",
    "AlertRule",
    "AgreementRule",
    "AlertTransition",
    "BulkAction",
    "DayRollup",
    "Delivery",
    "HourRollup",
    "Outcome",
    "OwnerRule",
    "PayloadEdit",
    "ReconciliationException",
    "Replay",
    "ReplayAttempt",
    "ReplaySlot",
    "ReplayState",
    "Rollup",
    "RollupCounts",
    "SLOStatus",
    "SLOThreshold",
    "Severity",
    "ShiftDigest",
    "StuckSummary",
    "Watermark",
]
