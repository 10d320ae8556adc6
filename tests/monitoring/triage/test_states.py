"""Triage state changes are conditional on what the database holds now, not on a copy read
earlier: two people (or a person and a replay) acting at once never undo each other."""

import pytest

from monitoring.triage import states
from tests.events import dead_letter
from tracing.models import DeadLetter

pytestmark = pytest.mark.django_db


def test_assigning_a_stale_copy_leaves_a_queued_replay_queued(alice, dave, p100):
    seen_by_dave = dead_letter()  # read while still new
    states.move_to(DeadLetter.objects.get(pk=seen_by_dave.pk), "replay_queued", by=alice)
    change = states.assign(seen_by_dave, dave, by=dave)
    fresh = DeadLetter.objects.get(pk=seen_by_dave.pk)
    assert (fresh.state, fresh.assignee) == ("replay_queued", dave)
    assert (change.from_state, change.to_state) == ("replay_queued", "replay_queued")


def test_a_new_letter_someone_takes_is_being_investigated(dave, p100):
    letter = dead_letter()
    change = states.assign(letter, dave, by=dave)
    assert DeadLetter.objects.get(pk=letter.pk).state == "investigating"
    assert (change.from_state, change.to_state) == ("new", "investigating")


def test_a_move_records_the_state_it_really_left(alice, p100):
    stale = dead_letter()
    states.move_to(DeadLetter.objects.get(pk=stale.pk), "investigating", by=alice)
    change = states.move_to(stale, "resolved", by=alice, text="fixed in MES")
    assert (change.from_state, change.to_state) == ("investigating", "resolved")
    assert states.move_to(stale, "discarded", by=alice) is None  # closed meanwhile
    assert DeadLetter.objects.get(pk=stale.pk).state == "resolved"
