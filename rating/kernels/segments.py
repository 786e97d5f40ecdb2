"""The calendar segment holding each instant, by binary search in its tariff's calendar.

Calendars of several tariffs lie end to end in one array of segment starts; tariff t owns
``seg_from[lo[t]:hi[t]]``, sorted, its first start reaching back without limit.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(parallel=True, nogil=True, cache=True)
def segment_of(tariff, at, seg_from, lo, hi):
    """Index into ``seg_from`` of the last segment of row i's tariff starting at or before
    ``at[i]``; -1 where the row has no tariff (``tariff[i] < 0``) or no segment starts
    that early."""
    n = len(at)
    out = np.full(n, -1, dtype=np.int64)
    for i in nb.prange(n):
        t = tariff[i]
        if t < 0:
            continue
        a, b = lo[t], hi[t]  # the answer is the last k in [a, b) with seg_from[k] <= at
        while a < b:
            mid = (a + b) // 2
            if seg_from[mid] <= at[i]:
                a = mid + 1
            else:
                b = mid
        if a > lo[t]:
            out[i] = a - 1
    return out


def segment_of_reference(tariff, at, seg_from, lo, hi) -> list[int]:
    """The same, one row at a time by a linear scan."""
    out = []
    for t, when in zip(tariff, at, strict=True):
        found = -1
        if t >= 0:
            for k in range(lo[t], hi[t]):
                if seg_from[k] <= when:
                    found = k
        out.append(found)
    return out
