"""Bundles and tiers against slow references, on random inputs.

- the bundle kernel equals its Python reference; no bundle gives more than its allowance;
  with one bundle, every event draws exactly what the allowance has left after the earlier
  events of its counter (consumption in event order);
- graduated prices allocated per event sum to the price of the total, and equal a
  unit-by-unit walk in exact fractions; a volume price equals its definition.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bills.usage_charges import volume_price
from rating.cycle import graduated_price
from rating.kernels.bundles import draw_bundles, draw_bundles_reference
from rules.catalog import Tiers

NANOS = 10**9


@st.composite
def bundle_inputs(draw):
    width = draw(st.integers(1, 4))
    counters = draw(st.integers(1, 4))
    n = draw(st.integers(0, 40))
    counter = sorted(draw(st.lists(st.integers(0, counters - 1), min_size=n, max_size=n)))
    eligible = draw(st.lists(st.integers(0, 2**width - 1), min_size=n, max_size=n))
    billed = draw(st.lists(st.integers(0, 600), min_size=n, max_size=n))
    left = draw(st.lists(st.lists(st.integers(0, 1500), min_size=width, max_size=width),
                         min_size=counters, max_size=counters))
    return counter, eligible, billed, left


@settings(max_examples=300, deadline=None)
@given(bundle_inputs())
def test_bundle_kernel_matches_reference_and_never_exceeds_allowance(data):
    counter, eligible, billed, left = data
    width = len(left[0])
    n = len(billed)
    left_arr = np.array(left, dtype=np.int64)
    take = np.zeros((n, width), dtype=np.int64)
    covered = draw_bundles(np.array(counter, np.int64), np.array(eligible, np.uint64),
                           np.array(billed, np.int64), left_arr, take)
    ref_left = {(c, b): units for c, row in enumerate(left) for b, units in enumerate(row)}
    ref_covered, ref_takes = draw_bundles_reference(counter, eligible, billed, ref_left)
    assert covered.tolist() == ref_covered
    assert [{b: int(u) for b, u in enumerate(row) if u} for row in take] == ref_takes
    for c, row in enumerate(left):
        for b, allowance in enumerate(row):
            drawn = sum(take[i, b] for i in range(n) if counter[i] == c)
            assert drawn <= allowance
            assert left_arr[c, b] == allowance - drawn >= 0
    assert (covered <= np.array(billed, np.int64)).all()
    # an event draws only from bundles it is eligible for
    for i in range(n):
        assert all(eligible[i] >> b & 1 for b in range(width) if take[i, b])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 500), max_size=30), st.integers(0, 3000))
def test_one_bundle_is_drawn_in_event_order(billed, allowance):
    n = len(billed)
    take = np.zeros((n, 1), dtype=np.int64)
    covered = draw_bundles(np.zeros(n, np.int64), np.ones(n, np.uint64),
                           np.array(billed, np.int64), np.array([[allowance]], np.int64), take)
    before = 0
    for i, q in enumerate(billed):
        assert covered[i] == min(q, max(allowance - before, 0))
        before += q


tier_lists = st.lists(st.tuples(st.integers(1, 50), st.integers(0, 3_000_000_000)),
                      min_size=1, max_size=4)


def _tiers(model: str, steps: list[tuple[int, int]], last_rate: int) -> Tiers:
    bounds = np.cumsum([w for w, _ in steps]).tolist()
    tiers = [{"up_to": b, "rate": str(Decimal(r) / NANOS)} for b, (_, r) in zip(
        bounds, steps, strict=True)]
    return Tiers.model_validate(
        {"model": model, "tiers": [*tiers, {"rate": str(Decimal(last_rate) / NANOS)}]})


def _walk(tiers: Tiers, unit: int, x: int) -> Fraction:
    """Unit by unit: the price of the first x quantity units, exactly."""
    total, low = Fraction(0), 0
    for tier in tiers.tiers:
        high = None if tier.up_to is None else tier.up_to * unit
        for _ in range(low, x if high is None else min(x, high)):
            total += Fraction(Decimal(tier.rate)) / unit
        if high is None or x <= high:
            break
        low = high
    return total


def _nanos(value: Fraction) -> int:
    return int((Decimal(value.numerator) / Decimal(value.denominator) * NANOS).quantize(
        Decimal(1), rounding=ROUND_HALF_UP)) if value.denominator != 1 else int(value * NANOS)


@settings(max_examples=150, deadline=None)
@given(tier_lists, st.integers(0, 3_000_000_000), st.sampled_from([1, 3, 60]),
       st.lists(st.integers(0, 200), max_size=12))
def test_graduated_allocation_sums_to_the_price_of_the_total(steps, last, unit, events):
    tiers = _tiers("graduated", steps, last)
    after = np.cumsum(events, dtype=np.int64)
    before = after - np.array(events, dtype=np.int64)
    per_event = graduated_price(tiers, unit, after) - graduated_price(tiers, unit, before)
    total = int(after[-1]) if events else 0
    assert int(per_event.sum()) == int(graduated_price(tiers, unit, np.array([total]))[0])
    assert int(graduated_price(tiers, unit, np.array([total]))[0]) == _nanos(
        _walk(tiers, unit, total))
    assert (per_event >= 0).all()


@settings(max_examples=150, deadline=None)
@given(tier_lists, st.integers(0, 3_000_000_000), st.integers(0, 3000))
def test_volume_price_is_every_unit_at_the_reached_tier(steps, last, quantity):
    tiers = _tiers("volume", steps, last)
    price, tier = volume_price(tiers, 1, quantity)
    if quantity == 0:
        assert (price, tier) == (0, 0)
        return
    bounds = [t.up_to for t in tiers.tiers]
    reached = next(k for k, b in enumerate(bounds) if b is None or quantity <= b)
    assert tier == reached + 1
    assert price == Decimal(tiers.tiers[reached].rate) * quantity
