"""Seeded inputs for the benchmarks, with named sizes."""

from __future__ import annotations

import numpy as np
import pytest

from ratecycle.allocators import keep_freed_memory

# The benchmarks measure rating as the `ratecycle` command runs it. Under `make bench`
# nothing has loaded Polars yet; under `make test` it may have, and the glibc part still
# applies.
keep_freed_memory()

SIZES = {"1M": 1_000_000}
DECK_PREFIXES = 10_000


@pytest.fixture(scope="session")
def rng() -> np.random.Generator:
    return np.random.default_rng(20261203)


@pytest.fixture(scope="session")
def deck(rng) -> list[str]:
    """10,000 distinct digit prefixes of 1-7 digits, shaped like a carrier deck."""
    seen: set[str] = set()
    while len(seen) < DECK_PREFIXES:
        length = int(rng.integers(1, 8))
        seen.add("".join(map(str, rng.integers(0, 10, length))))
    return sorted(seen)


@pytest.fixture(scope="session")
def numbers_1m(rng) -> list[str]:
    digits = rng.integers(0, 10, size=(SIZES["1M"], 11)).astype(np.uint8) + 48
    return [row.tobytes().decode() for row in digits]
