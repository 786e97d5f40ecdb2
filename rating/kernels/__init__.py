"""Numba kernels of the rating core. Each takes plain null-free arrays and returns arrays;
beside each sits a pure-Python reference that is its test oracle and specification."""

from __future__ import annotations

import numpy as np


def threads_safe() -> bool:
    """Whether the parallel kernels may run in several threads at once: Numba's OpenMP and
    TBB layers allow it; its fallback `workqueue` layer (no OpenMP runtime, no TBB) aborts
    the process on concurrent use."""
    import numba

    from .segments import segment_of

    one = np.zeros(1, dtype=np.int64)
    segment_of(one, one, one, one, one + 1)  # starts the threading layer if it is not
    return numba.threading_layer() in ("omp", "tbb")
