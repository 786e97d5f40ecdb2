"""Spans left to charge after a bundle covers events from their start: kernel against its
reference, plus pinned cases."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.kernels.bundles import uncovered_spans, uncovered_spans_reference


def run(spans, covered):
    row, billed, count, inc = (np.array(c, dtype=np.int64) for c in zip(*spans, strict=True))
    left, left_count = uncovered_spans(row, billed, count, inc, np.array(covered, np.int64))
    return list(zip(left.tolist(), left_count.tolist(), strict=True))


def test_a_call_covered_into_its_per_second_part():
    # 90 s call: the first 60 s as one block, then 30 one-second increments; 70 s covered
    assert run([(0, 60, 1, 60), (0, 30, 30, 1)], [70]) == [(0, 0), (20, 20)]


def test_a_block_cut_short_still_pays_a_whole_increment():
    # 60 s block, 20 s covered: 40 s left, one increment of 60 s
    assert run([(0, 60, 1, 60)], [20]) == [(40, 1)]


def test_uncovered_and_wholly_covered_events():
    assert run([(0, 60, 1, 60), (1, 60, 1, 60), (1, 5, 5, 1)], [0, 65]) == [
        (60, 1), (0, 0), (0, 0)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(1, 5), st.sampled_from([1, 6, 30, 60])),
                         min_size=1, max_size=4), min_size=1, max_size=8),
       st.data())
def test_matches_reference(events, data):
    spans = [(e, n * inc, n, inc) for e, parts in enumerate(events) for n, inc in parts]
    covered = [data.draw(st.integers(0, sum(n * inc for n, inc in parts) + 5))
               for parts in events]
    assert run(spans, covered) == uncovered_spans_reference(spans, covered)
