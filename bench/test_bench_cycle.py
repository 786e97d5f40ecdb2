"""Cycle-cumulative pricing on 1M events: bundle depletion (the Numba kernel
``draw_bundles``) and graduated tiers (``graduated_price``). Run with `make bench`.

Inputs are shaped like the benchmark month (bench/generate.py): about 5,000 subscribers'
billing periods, half of them with the 300-minute voice bundle, calls billed 60/1, and
data sessions priced by the generated catalog's graduated tiers.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from bench.conftest import SIZES
from bench.generate import BUNDLE_MINUTES, DATA_TIERS
from rating.cycle import graduated_price
from rating.kernels.bundles import draw_bundles
from rules.catalog import Tier, Tiers

COUNTERS = 5_000
MB = 10**6


@pytest.fixture(scope="module")
def calls(rng):
    """1M calls in consumption order: counter (subscriber period), eligibility bit mask
    (counters of odd number hold the bundle), billed seconds (60/1 increments)."""
    n = SIZES["1M"]
    counter = np.sort(rng.integers(0, COUNTERS, n)).astype(np.int64)
    eligible = (counter % 2).astype(np.uint64)
    seconds = np.clip(np.round(np.exp(rng.normal(np.log(75), 1.1, n))), 1, 4 * 3600)
    billed = np.maximum(seconds, 60).astype(np.int64)
    return counter, eligible, billed


def _fresh(calls):
    counter, eligible, billed = calls
    left = np.full((COUNTERS, 1), BUNDLE_MINUTES * 60, dtype=np.int64)
    take = np.zeros((len(billed), 1), dtype=np.int64)
    return (counter, eligible, billed, left, take), {}


def test_bundle_depletion_1m(benchmark, calls):
    draw_bundles(*_fresh(calls)[0])  # compile / load from cache
    covered = benchmark.pedantic(draw_bundles, setup=lambda: _fresh(calls), rounds=5)
    counter, eligible, billed = calls
    # each bundle counter gives min(allowance, what its calls bill); others give nothing
    given = np.bincount(counter, weights=covered, minlength=COUNTERS).astype(np.int64)
    wanted = np.bincount(counter, weights=billed * eligible.astype(np.int64),
                         minlength=COUNTERS).astype(np.int64)
    assert np.array_equal(given, np.minimum(wanted, BUNDLE_MINUTES * 60))
    assert 0 < (covered[eligible == 1] < billed[eligible == 1]).sum()


def _tiers() -> Tiers:
    return Tiers(model="graduated",
                 tiers=[Tier(up_to=up_to, rate=rate) for up_to, rate in DATA_TIERS])


def _by_hand(x: int) -> int:
    """G(x) in nanos from the tier table with Decimal, rounded half up once."""
    total, low = Decimal(0), 0
    for up_to, rate in DATA_TIERS:
        high = None if up_to is None else up_to * MB
        inside = max(0, (x if high is None else min(x, high)) - low)
        total += Decimal(rate) * 10**9 * inside / MB
        if high is None:
            break
        low = high
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.fixture(scope="module")
def sessions(rng):
    """1M data sessions (kB increments) in order within ~5,000 subscriber periods: the
    units each period used before every session, and after it."""
    n = SIZES["1M"]
    counter = np.sort(rng.integers(0, COUNTERS, n))
    size = np.clip(np.round(np.exp(rng.normal(np.log(2e6), 1.5, n))), 1, 2e9).astype(np.int64)
    billed = -(-size // 1000) * 1000
    after = np.cumsum(billed)
    first = np.searchsorted(counter, counter, side="left")
    after -= after[first] - billed[first]
    return after - billed, after


def test_graduated_tiers_1m(benchmark, sessions):
    before, after = sessions
    tiers = _tiers()

    def price():
        return graduated_price(tiers, MB, after) - graduated_price(tiers, MB, before)

    cost = benchmark(price)
    assert (cost >= 0).all() and (after > 1000 * MB).any()
    for i in np.linspace(0, len(after) - 1, 50).astype(int):
        assert cost[i] == _by_hand(int(after[i])) - _by_hand(int(before[i]))
