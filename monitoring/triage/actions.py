"""Acting on dead letters: close, assign and bulk actions, checked and audited."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integration_hub.models import Plant
from integration_hub.roles import ADMIN, TRIAGE_PERMISSION, can_triage, sees_all_plants
from monitoring.models import BulkAction, Replay
from monitoring.replay.ordering import release_held
from monitoring.replay.requests import replay_selection
from monitoring.triage.selectors import InvalidFilter
from tracing.models import DeadLetter, DeadLetterChange

BULK_ACTIONS = ("replay", "resolve", "discard", "assign")


class NotAllowed(PermissionError):
    """The person may read but not act (supervisors), or acts on what they cannot see."""


def ensure_can_act(user):
    if not can_triage(user):
        raise NotAllowed("Only analysts and admins may act on dead letters; you may read them.")


def plants_of(letters):
    """The plants a selection of dead letters belongs to."""
    return list(Plant.objects.filter(id__in=letters.values("plant_id")))


def assignable(plants):
    """People who may triage dead letters of every one of these plants: admins, and analysts
    who are members of each. Others are never listed, so no page shows who works elsewhere."""
    plant_ids = {p.pk for p in plants}
    admin = Q(is_superuser=True) | Q(is_staff=True) | Q(groups__name=ADMIN)
    triagers = (
        admin
        | Q(groups__permissions__codename=TRIAGE_PERMISSION)
        | Q(user_permissions__codename=TRIAGE_PERMISSION)
    )
    active = get_user_model().objects.filter(is_active=True)
    admins = set(active.filter(admin).values_list("id", flat=True))
    people = (
        active.filter(triagers)
        .distinct()
        .prefetch_related("plant_memberships")
        .order_by("username")
    )
    return [
        p for p in people
        if p.id in admins or plant_ids <= {m.plant_id for m in p.plant_memberships.all()}
    ]  # fmt: skip


def assignee_from(username, plants):
    """The person a dead letter of these plants is assigned to ('' or None: nobody)."""
    if not username:
        return None
    user = next((p for p in assignable(plants) if p.get_username() == username), None)
    if user is None:
        codes = ", ".join(sorted(p.code for p in plants))
        raise InvalidFilter("assignee", f"No one named {username!r} may triage at {codes}.")
    return user


def close(letters, *, state, by, reason, now=None):
    """Resolve or discard open dead letters (not those a replay holds); return how many."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidFilter("reason", f"Say why they are {state}.")
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            DeadLetter.objects.select_for_update()
            .filter(id__in=letters.values("id"), state__in=("new", "investigating"))
            .values_list("id", "state", "business_key")
        )
        ids = [i for i, _, _ in rows]
        for start in range(0, len(ids), 1000):
            DeadLetter.objects.filter(
                id__in=ids[start : start + 1000], state__in=("new", "investigating")
            ).update(state=state, closed_at=now, updated_at=now)
        DeadLetterChange.objects.bulk_create(
            [
                DeadLetterChange(
                    dead_letter_id=i,
                    at=now,
                    by=by,
                    kind="state",
                    from_state=old,
                    to_state=state,
                    text=reason,
                )  # fmt: skip
                for i, old, _ in rows
            ],
            batch_size=1000,
        )
        release_held({key for _, _, key in rows if key}, now=now)
    return len(ids)


def assign(letters, *, assignee, by, now=None):
    """Assign open dead letters to a person (or nobody); return how many."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            DeadLetter.objects.select_for_update()
            .filter(id__in=letters.values("id"), state__in=DeadLetter.OPEN_STATES)
            .values_list("id", "state")
        )
        ids = [i for i, _ in rows]
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            DeadLetter.objects.filter(id__in=chunk).update(assignee=assignee, updated_at=now)
            if assignee is not None:
                DeadLetter.objects.filter(id__in=chunk, state="new").update(state="investigating")
        DeadLetterChange.objects.bulk_create(
            [
                DeadLetterChange(
                    dead_letter_id=i,
                    at=now,
                    by=by,
                    kind="assign",
                    from_state=old,
                    to_state="investigating" if old == "new" and assignee else old,
                    assignee=assignee,
                )  # fmt: skip
                for i, old in rows
            ],
            batch_size=1000,
        )
    return len(ids)


def bulk(*, action, letters, by, reason="", assignee=None, selection=None, now=None):
    """Run a bulk action on a selection; return the BulkAction (its handle to follow progress)."""
    ensure_can_act(by)
    now = now or timezone.now()
    if action not in BULK_ACTIONS:
        raise InvalidFilter("action", f"Choose one of: {', '.join(BULK_ACTIONS)}.")
    if action == "replay":
        return replay_selection(
            dead_letters=letters, requested_by=by, reason=reason, selection=selection, now=now
        )
    if action in ("resolve", "discard"):
        touched = close(
            letters, state="resolved" if action == "resolve" else "discarded", by=by,
            reason=reason, now=now,
        )  # fmt: skip
    else:
        touched = assign(letters, assignee=assignee, by=by, now=now)
    return BulkAction.objects.create(
        action=action, requested_by=by, requested_at=now, selection=selection or {},
        reason=reason, touched=touched,
    )  # fmt: skip


def preview_count(*, action, letters):
    """How many dead letters a bulk action would touch (for the confirmation), and why not."""
    open_letters = letters.filter(state__in=("new", "investigating"))
    if action == "replay":
        open_count = open_letters.count()
        superseded = open_letters.filter(superseded_at__isnull=False).count()
        no_endpoint = (
            open_letters.filter(superseded_at__isnull=True)
            .filter(Q(target__isnull=True) | Q(target__replay_url=""))
            .count()
        )
        return {
            "touch": open_count - superseded - no_endpoint,
            "superseded": superseded,
            "no_replay_endpoint": no_endpoint,
            "not_open": letters.count() - open_count,
        }
    if action == "assign":
        touch = letters.filter(state__in=DeadLetter.OPEN_STATES).count()
    else:
        touch = open_letters.count()
    return {"touch": touch, "not_open": letters.count() - touch}


def bulk_for(user, bulk_id):
    """The bulk action a person may follow, and the dead letters of it they may see.

    Returns (bulk, dead_letters), dead_letters None when they see every plant; (None, None)
    when the bulk is not theirs to see: a replay bulk is shown to its requester and to people
    who may triage, each only for dead letters of their own plants; other bulks to the requester.
    """
    bulk = BulkAction.objects.filter(pk=bulk_id).first()
    if bulk is None:
        return None, None
    visible = None if sees_all_plants(user) else DeadLetter.objects.for_user(user)
    mine = bulk.requested_by_id == user.id
    if bulk.action == "replay":
        replays = Replay.objects.filter(bulk=bulk)
        if visible is not None:
            replays = replays.filter(dead_letter__in=visible)
        allowed = (mine or can_triage(user)) and replays.exists()
    else:
        allowed = mine
    return (bulk, visible) if allowed else (None, None)
