"""Longest-prefix match: the Numba kernel over Arrow buffers, 1M destinations, 10k prefixes.

Run with `make bench`. The first call compiles (cache=True keeps it for later runs), so
the benchmark warms up before timing.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from rating.kernels.prefix import ALWAYS, Trie, longest_prefix
from rating.rate import _string_buffers


def test_prefix_kernel_1m(benchmark, deck, numbers_1m):
    trie = Trie()
    root = trie.new_root()
    for i, prefix in enumerate(deck):
        trie.insert(root, prefix, i, ALWAYS)
    arrays = trie.arrays()
    n = len(numbers_1m)
    offsets, data = _string_buffers(pl.Series(numbers_1m))
    roots = np.full(n, root, dtype=np.int32)
    at = np.zeros(n, dtype=np.int64)
    mask_at = np.ones(n, dtype=np.uint64)  # one band, always in force
    entry_mask = np.ones(len(deck), dtype=np.uint64)
    args = (offsets, data, roots, at, mask_at, *arrays, entry_mask)
    longest_prefix(*args)  # compile / load from cache
    result = benchmark(longest_prefix, *args)
    assert (result >= 0).mean() > 0.5
