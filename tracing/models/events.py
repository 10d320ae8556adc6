"""Trace events as reported, and the transactions they are stitched into."""

from urllib.parse import urlencode

from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from integration_hub.models import Flow, Plant, PlantScopedQuerySet, System


def timeline_url(flow_code, correlation_id, plant_code):
    """A transaction's timeline page; names the plant, since plants may reuse correlation IDs."""
    path = reverse("transaction-detail", args=[flow_code, correlation_id])
    return f"{path}?{urlencode({'plant': plant_code})}"


class TransactionState(models.TextChoices):
    IN_FLIGHT = "in_flight", "In flight"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    STUCK = "stuck", "Stuck"


class TransactionQuerySet(PlantScopedQuerySet):
    def in_state(self, state, now=None):
        """Filter by state as it is now: an open transaction past its deadline reads as stuck."""
        now = now or timezone.now()
        if state == TransactionState.STUCK:
            return self.filter(
                Q(state=state) | Q(state=TransactionState.IN_FLIGHT, stuck_at__lte=now)
            )
        if state == TransactionState.IN_FLIGHT:
            return self.filter(state=state, stuck_at__gt=now)
        return self.filter(state=state)


class Transaction(models.Model):
    """One business transaction: every event of one plant and flow with one correlation ID.

    Plants never share one: two plants whose systems reuse an order number have two
    transactions, and a reporter of one plant cannot reach another plant's.

    Every field is an order-independent aggregate of the transaction's events (see
    tracing/correlate.py), so late, duplicated and out-of-order arrivals give the same row.
    """

    # No database constraint on the catalog references, as for events: validation checks them
    # on the way in, Django's PROTECT keeps a flow or plant with transactions from deletion, and
    # the deferred per-row checks at commit were a tenth of the database's CPU in a batch.
    flow = models.ForeignKey(
        Flow, on_delete=models.PROTECT, related_name="transactions", db_constraint=False
    )
    correlation_id = models.CharField(max_length=128)
    # Indexed by the identity constraint and txn_plant_last_seen, which start with it.
    plant = models.ForeignKey(
        Plant,
        on_delete=models.PROTECT,
        related_name="transactions",
        db_index=False,
        db_constraint=False,
    )
    state = models.CharField(
        max_length=16, choices=TransactionState.choices, default=TransactionState.IN_FLIGHT
    )
    business_keys = models.JSONField(default=dict)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    # Event id of the earliest event (tie-break for which event names the plant).
    first_event_id = models.CharField(max_length=128)
    milestones = models.JSONField(default=dict, help_text="Milestone → time first reached (ok).")
    milestones_last_ok = models.JSONField(default=dict, help_text="Milestone → latest ok time.")
    milestone_systems = models.JSONField(
        default=dict,
        help_text="Milestone → system id → [first, latest] ok time of an event that system sent "
        "or received: which targets a fan-out milestone reached.",
    )
    partial_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A fan-out milestone has reached some targets and not all, since then.",
    )
    failure_at = models.DateTimeField(null=True, blank=True)
    failure_step = models.CharField(max_length=64, blank=True)
    failure_event_id = models.CharField(max_length=128, blank=True)
    last_error = models.JSONField(null=True, blank=True)
    event_count = models.PositiveIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    stuck_at = models.DateTimeField(help_text="When it counts as stuck if still open.")
    updated_at = models.DateTimeField(auto_now=True)

    objects = TransactionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["plant", "flow", "correlation_id"], name="uniq_txn_plant_flow_corr"
            )
        ]
        indexes = [
            models.Index(fields=["-last_seen", "-id"], name="txn_last_seen"),
            models.Index(fields=["plant", "-last_seen"], name="txn_plant_last_seen"),
            models.Index(fields=["correlation_id"], name="txn_correlation"),
            models.Index(fields=["state", "stuck_at"], name="txn_state_stuck"),
            # Dashboards count what is open or failed per plant and flow: small partial indexes
            # whose size follows the open and failed work, not the history, and that hold what
            # the counts read (index-only scans: open transactions lie scattered over the heap).
            models.Index(
                fields=["plant", "flow", "first_seen"],
                condition=Q(state__in=["in_flight", "stuck"]),
                include=["state", "stuck_at"],
                name="txn_open",
            ),
            models.Index(
                fields=["plant", "last_seen"],
                condition=Q(state="failed"),
                include=["flow", "first_seen"],
                name="txn_failed",
            ),
            # Fan-outs that reached some targets and not all: what reconciliation looks at.
            models.Index(
                fields=["partial_since"],
                condition=Q(partial_since__isnull=False),
                name="txn_partial",
            ),
        ]

    def __str__(self):
        return f"{self.plant_id}:{self.flow_id}:{self.correlation_id}"

    def get_absolute_url(self):
        return timeline_url(self.flow.code, self.correlation_id, self.plant.code)

    def current_state(self, now=None):
        now = now or timezone.now()
        if self.state == TransactionState.IN_FLIGHT and self.stuck_at <= now:
            return TransactionState.STUCK
        return self.state


class BusinessKey(models.Model):
    """One business key value of a transaction; the index behind search and journeys."""

    # Indexed by uniq_txn_key, which starts with it. Written a thousand rows a batch, so no
    # database constraint: rows are only made for the transaction just locked, and go with it
    # (Django's cascade; retention deletes through it).
    transaction = models.ForeignKey(
        Transaction,
        on_delete=models.CASCADE,
        related_name="keys",
        db_index=False,
        db_constraint=False,
    )
    name = models.CharField(max_length=64)
    value = models.CharField(max_length=256)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["transaction", "name", "value"], name="uniq_txn_key")
        ]
        indexes = [models.Index(fields=["value", "name"], name="bkey_value_name")]

    def __str__(self):
        return f"{self.name}:{self.value}"


class EventStatus(models.TextChoices):
    OK = "ok", "OK"
    RETRYING = "retrying", "Retrying"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"


FAILURE_STATUSES = frozenset({EventStatus.FAILED, EventStatus.REJECTED})


class TraceEvent(models.Model):
    """One hop of one business transaction, as a system reported it. Append-only.

    On PostgreSQL the table is partitioned by range of received_at (tracing/partitions/): its
    primary key there is (id, received_at), and event_id is kept unique by the EventLedger,
    since a partitioned table's unique keys must include the partition key.
    """

    event_id = models.CharField(max_length=128, unique=True)
    # Indexed by event_txn_time, which starts with it; no database constraint, as for business
    # keys: ingest stores events only for the transaction it has just created or locked, and a
    # per-row check at every commit cost more than the event's own index entries.
    transaction = models.ForeignKey(
        Transaction,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    # Catalog references are checked by validation on the way in, and catalog rows are never
    # deleted through the product, so the hot insert skips per-row FK checks and their indexes.
    flow = models.ForeignKey(
        Flow, models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    correlation_id = models.CharField(max_length=128)
    step = models.CharField(max_length=64)
    source = models.ForeignKey(
        System, models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    target = models.ForeignKey(
        System,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    plant = models.ForeignKey(
        Plant, models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    status = models.CharField(max_length=16, choices=EventStatus.choices, default=EventStatus.OK)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    business_keys = models.JSONField(default=dict)
    error_class = models.CharField(max_length=32, blank=True)
    error_code = models.CharField(max_length=128, blank=True)
    error_message = models.TextField(blank=True)
    payload = models.JSONField(null=True, blank=True)
    attributes = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["transaction", "occurred_at"], name="event_txn_time"),
            models.Index(fields=["received_at"], name="event_received"),
        ]

    def __str__(self):
        return self.event_id

    @property
    def error(self):
        if not (self.error_class or self.error_code or self.error_message):
            return None
        return {"class": self.error_class, "code": self.error_code, "message": self.error_message}

    @property
    def is_failure(self):
        return self.status in FAILURE_STATUSES


class EventLedger(models.Model):
    """Every stored event's id, once: the unique guarantee on event_id where the event table is
    partitioned (PostgreSQL). Ingest claims ids here (INSERT … ON CONFLICT DO NOTHING) and
    stores only the events it claimed, in the same transaction; a concurrent sender of the same
    id waits on this primary key, then finds it taken. Rows go with their events (a trigger on
    delete, and with each dropped partition). Unused on SQLite, where event_id is unique."""

    event_id = models.CharField(max_length=128, primary_key=True)
    received_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return self.event_id


class PendingCorrelation(models.Model):
    """A stored event not yet folded into its transaction: the correlator's queue when
    INGEST_CORRELATION=deferred (tracing/ingest/correlator.py).

    Written in the same statement and transaction as the event, so a 202 means the event will
    be folded; the correlator deletes the rows it folds in the transaction that folds them, so
    a crash of either side loses nothing and folds nothing twice.
    """

    # The event row's id and partition key (no foreign key can point into a partitioned table).
    event_pk = models.BigIntegerField()
    received_at = models.DateTimeField()

    def __str__(self):
        return f"event {self.event_pk}"


class CorrelatorPace(models.Model):
    """How fast one running correlator folds (events per second of pass, smoothed), so the
    event doors can tell when the queue ahead of a batch would take longer to fold than the
    lag promised (tracing/ingest/backlog.py). One row per correlator process, rewritten after
    each pass big enough to measure; correlators side by side add up."""

    worker = models.CharField(max_length=200, unique=True)  # host:pid
    events_per_second = models.FloatField()
    measured_at = models.DateTimeField()

    def __str__(self):
        return f"{self.worker}: {self.events_per_second:,.0f} events/s"
