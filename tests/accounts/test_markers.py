"""``model.Markers``: one account's read markers, the oldest going first past the cap.

Checked against the plain rule it replaces (after each marker kept, drop the oldest,
of equals the smallest name, while over the cap), on a small cap so that every
sequence crosses it many times.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.accounts import model
from server.accounts.model import Markers

CAP = 5

steps = st.lists(
    st.tuples(st.sampled_from([f"#{c}" for c in "abcdefghij"]), st.integers(0, 12)),
    max_size=200,
)


def reference(sequence: list[tuple[str, int]]) -> tuple[dict[str, int], list[bool]]:
    """What the plain rule keeps, and what each step answers."""
    times: dict[str, int] = {}
    answers = []
    for target, time_ms in sequence:
        if times.get(target, -1) >= time_ms:
            answers.append(True)
            continue
        times[target] = time_ms
        kept = True
        if len(times) > CAP:
            oldest = min((t, name) for name, t in times.items())[1]
            del times[oldest]
            kept = oldest != target
        answers.append(kept)
    return times, answers


@settings(max_examples=300, deadline=None)
@given(steps)
def test_markers_keep_what_the_plain_rule_keeps(sequence: list[tuple[str, int]]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model, "ACCOUNT_MARKERS", CAP)
        markers = Markers()
        answers = [markers.keep(target, time_ms) for target, time_ms in sequence]
    expected, expected_answers = reference(sequence)
    assert dict(markers.items()) == expected
    assert answers == expected_answers
    assert len(markers) == len(expected) <= CAP
    for target in expected:
        assert markers.get(target) == expected[target]


def test_moving_markers_of_a_full_account_does_not_grow_its_heap() -> None:
    # Each move leaves a stale heap entry behind: they are dropped once they
    # outnumber the markers, so a full account's memory stays bounded.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model, "ACCOUNT_MARKERS", CAP)
        markers = Markers()
        for i in range(CAP + 1):
            markers.keep(f"#{i}", i)
        for time_ms in range(100, 10_100):
            markers.keep("#5", time_ms)
    heap = markers._heap
    assert heap is not None and len(heap) <= 2 * CAP
    assert len(markers) == CAP and markers.get("#5") == 10_099 and markers.get("#0") is None
