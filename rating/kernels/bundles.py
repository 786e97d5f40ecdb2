"""Drawing events on bundles (free allowances), in event order.

Events arrive in consumption order (by start time); each names its counter (a
subscriber's billing period under one plan), whose bundles it draws on, so events of
different counters may interleave. ``eligible[i]`` is a bit mask over the
bundles of event i's plan (bit b: the plan's b-th bundle, in catalog order). Each event
draws its billed units from the eligible bundles in order, each bundle giving what it has
left, until the event is covered or the bundles are empty; what an event cannot draw is
charged. ``left[c, b]`` holds what counter c has left of bundle b and is updated in place.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(nogil=True, cache=True)
def draw_bundles(counter, eligible, billed, left, take):
    """Fill ``take[i, b]`` (units event i draws from bundle b); return units covered per
    event."""
    n = len(billed)
    covered = np.zeros(n, dtype=np.int64)
    width = left.shape[1]
    for i in range(n):
        need = billed[i]
        c = counter[i]
        mask = eligible[i]
        for b in range(width):
            if need <= 0:
                break
            if (mask >> np.uint64(b)) & np.uint64(1) and left[c, b] > 0:
                units = min(need, left[c, b])
                take[i, b] = units
                left[c, b] -= units
                need -= units
        covered[i] = billed[i] - need
    return covered


def draw_bundles_reference(counter, eligible, billed, left) -> tuple[list[int], list[dict]]:
    """The same walk in plain Python: (covered per event, {bundle: units} per event);
    ``left`` is a dict {(counter, bundle): units} updated in place."""
    covered, takes = [], []
    for c, mask, need in zip(counter, eligible, billed, strict=True):
        drawn = {}
        b = 0
        while need > 0 and mask >> b:
            if mask >> b & 1 and left.get((c, b), 0) > 0:
                units = min(need, left[(c, b)])
                drawn[b] = units
                left[(c, b)] -= units
                need -= units
            b += 1
        takes.append(drawn)
        covered.append(sum(drawn.values()))
    return covered, takes


@nb.njit(nogil=True, cache=True)
def uncovered_spans(row, billed, count, increment, covered):
    """A bundle covers an event from its start: take the first ``covered[row[k]]`` units
    off the spans of each event (spans of one event are adjacent, in offset order).
    Returns the billed units and increments left to charge per span; a span cut short
    keeps the increments its remaining units need."""
    m = len(row)
    left = np.empty(m, dtype=np.int64)
    left_count = np.empty(m, dtype=np.int64)
    done = 0  # units of the event in the spans before k
    for k in range(m):
        if k == 0 or row[k] != row[k - 1]:
            done = 0
        units = min(max(covered[row[k]] - done, 0), billed[k])
        left[k] = billed[k] - units
        if units == 0:
            left_count[k] = count[k]
        else:
            left_count[k] = (left[k] + increment[k] - 1) // increment[k]
        done += billed[k]
    return left, left_count


def uncovered_spans_reference(spans, covered) -> list[tuple[int, int]]:
    """The same for ``spans`` as (event, billed, increments, increment) in order: walk each
    event's units from its start, the first ``covered[event]`` of them free."""
    out, done, last = [], 0, None
    for event, billed, count, increment in spans:
        if event != last:
            done, last = 0, event
        free = sorted((0, covered[event] - done, billed))[1]
        rest = billed - free
        out.append((rest, count if free == 0 else -(-rest // increment)))
        done += billed
    return out
