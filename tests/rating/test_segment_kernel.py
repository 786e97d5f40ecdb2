"""The calendar segment lookup against its reference, plus pinned edge cases."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.kernels.segments import segment_of, segment_of_reference

MIN = np.iinfo(np.int64).min


def calendars(starts: list[list[int]]):
    """Sorted segment starts of several tariffs laid end to end, as rating lays them."""
    lo, hi, flat = [], [], []
    for seg in starts:
        lo.append(len(flat))
        flat += sorted(seg)
        hi.append(len(flat))
    return (np.array(flat, dtype=np.int64), np.array(lo, dtype=np.int64),
            np.array(hi, dtype=np.int64))


def test_pinned():
    seg_from, lo, hi = calendars([[MIN, 100, 200], [MIN, 150]])
    tariff = np.array([0, 0, 0, 0, 1, 1, -1], dtype=np.int64)
    at = np.array([-5, 100, 199, 10**12, 149, 150, 100], dtype=np.int64)
    assert segment_of(tariff, at, seg_from, lo, hi).tolist() == [0, 1, 1, 2, 3, 4, -1]


def test_empty_and_before_the_first_start():
    seg_from, lo, hi = calendars([[10, 20], []])
    tariff = np.array([0, 1], dtype=np.int64)
    at = np.array([5, 30], dtype=np.int64)
    assert segment_of(tariff, at, seg_from, lo, hi).tolist() == [-1, -1]
    empty = np.zeros(0, dtype=np.int64)
    assert segment_of(empty, empty, seg_from, lo, hi).tolist() == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(-50, 50), max_size=6), min_size=1, max_size=4),
       st.lists(st.tuples(st.integers(-1, 3), st.integers(-60, 60)), max_size=40))
def test_matches_reference(starts, rows):
    seg_from, lo, hi = calendars(starts)
    tariff = np.array([min(t, len(starts) - 1) for t, _ in rows], dtype=np.int64)
    at = np.array([a for _, a in rows], dtype=np.int64)
    assert segment_of(tariff, at, seg_from, lo, hi).tolist() == segment_of_reference(
        tariff, at, seg_from, lo, hi)
