"""A dead letter's triage: the state machine, assignment, notes and payload edits, each recorded
in its audit trail (`DeadLetterChange`)."""

from django.db import transaction
from django.utils import timezone

from monitoring.models import PayloadEdit
from tracing.models import DeadLetter, DeadLetterChange

# Which state may follow which; replay_queued is left only by a replay's outcome or cancel.
TRANSITIONS = {
    "new": {"investigating", "replay_queued", "resolved", "discarded"},
    "investigating": {"replay_queued", "resolved", "discarded"},
    "replay_queued": {"replayed", "investigating"},
    "replayed": {"replay_queued"},  # a deliberate re-replay, with a reason
    "resolved": set(),
    "discarded": set(),
}


def _locked_state(letter):
    """The letter's state as the database has it now, the row locked until commit."""
    rows = DeadLetter.objects.select_for_update().filter(pk=letter.pk)
    return rows.values_list("state", flat=True).first()


def can_move_to(letter, state):
    return state in TRANSITIONS.get(letter.state, ())


def move_to(letter, state, *, by=None, text="", now=None, kind="state"):
    """Change state if the state machine allows it (conditional UPDATE); record who and when.

    Returns the change row, or None when another request moved it first.
    """
    now = now or timezone.now()
    closed = now if state in DeadLetter.CLOSED_STATES else None
    with transaction.atomic():
        current = _locked_state(letter)
        if current is None or state not in TRANSITIONS.get(current, ()):
            return None
        DeadLetter.objects.filter(pk=letter.pk, state=current).update(
            state=state, closed_at=closed, updated_at=now
        )
        change = DeadLetterChange.objects.create(
            dead_letter=letter, at=now, by=by, kind=kind, from_state=current, to_state=state,
            text=text,
        )  # fmt: skip
    letter.state, letter.closed_at, letter.updated_at = state, closed, now
    return change


def assign(letter, assignee, *, by=None, now=None, text="", investigate=True):
    """Assign to a person (or nobody); a new dead letter someone takes is being investigated
    (not when an owner rule hands it over: `investigate=False`, nobody has looked yet).

    Only `new` moves (conditionally): a letter whose replay was queued meanwhile stays queued.
    """
    now = now or timezone.now()
    with transaction.atomic():
        current = _locked_state(letter)
        takes = investigate and current == "new" and assignee
        state = "investigating" if takes else current
        DeadLetter.objects.filter(pk=letter.pk, state=current).update(
            assignee=assignee, state=state, updated_at=now
        )
        change = DeadLetterChange.objects.create(
            dead_letter=letter, at=now, by=by, kind="assign", from_state=current, to_state=state,
            assignee=assignee, text=text,
        )  # fmt: skip
    letter.assignee, letter.state, letter.updated_at = assignee, state, now
    return change


def add_note(letter, text, *, by=None, now=None):
    return DeadLetterChange.objects.create(
        dead_letter=letter, at=now or timezone.now(), by=by, kind="note",
        from_state=letter.state, to_state=letter.state, text=text,
    )  # fmt: skip


def edit_payload(letter, payload, *, reason, by=None, now=None):
    """Store an edited payload as the next version; the original is kept as it was."""
    now = now or timezone.now()
    version = letter.payload_version + 1
    PayloadEdit.objects.create(
        dead_letter=letter, version=version, payload=payload, reason=reason, edited_by=by,
        edited_at=now,
    )  # fmt: skip
    DeadLetter.objects.filter(pk=letter.pk).update(
        edited_payload=payload, payload_version=version, updated_at=now
    )
    letter.edited_payload, letter.payload_version = payload, version
    DeadLetterChange.objects.create(
        dead_letter=letter, at=now, by=by, kind="edit", from_state=letter.state,
        to_state=letter.state, text=f"Payload version {version}: {reason}",
    )  # fmt: skip
    return version
