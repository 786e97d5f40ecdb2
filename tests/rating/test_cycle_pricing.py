"""Bundles and tiers against slow references, on random inputs.

- the bundle kernel equals its Python reference; no bundle gives more than its allowance;
  with one bundle, every event draws exactly what the allowance has left after the earlier
  events of its counter (consumption in event order);
- through `rate_batch`, a subscriber's bundle use does not depend on the row order of its
  events: earlier events (by start, then event id) are covered first;
- graduated prices allocated per event sum to the price of the total, and equal a
  unit-by-unit walk in exact fractions; a volume price equals a walk that finds the tier
  the period total reaches one charge unit at a time, for any unit, on and beside the
  inclusive tier bounds, with the total billed after the charge's increments.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bills.usage_charges import volume_price
from ingest.schema import USAGE_SCHEMA
from rating import compile_catalog, rate_batch
from rating.cycle import graduated_price
from rating.kernels.bundles import draw_bundles, draw_bundles_reference
from rules import load_catalog
from rules.catalog import FlatCharge, Tiers

NANOS = 10**9
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # every event of these tests is in March


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("catalogs")


def _load(folder, text: str):
    (folder / "catalog.yaml").write_text(text)
    catalog = load_catalog(folder / "catalog.yaml")
    return catalog, compile_catalog(catalog)


def _usage(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame({k: [r.get(k) for r in rows] for k in USAGE_SCHEMA}, schema=USAGE_SCHEMA)


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


@st.composite
def shuffled_calls(draw):
    """Calls of two subscribers with clashing start times, in a random row order."""
    n = draw(st.integers(1, 24))
    ids = draw(st.lists(st.text("abxyz019", min_size=1, max_size=3), min_size=n, max_size=n,
                        unique=True))
    rows = [{"event_id": event_id, "subscriber_id": draw(st.sampled_from(["S1", "S2"])),
             "service": "voice", "destination": "4930123456",
             # few distinct minutes, so that ties on started_at fall back to event_id
             "started_at": T0 + timedelta(minutes=draw(st.integers(0, 6))),
             "quantity": draw(st.integers(0, 400))} for event_id in ids]
    order = draw(st.permutations(range(n)))
    return rows, [rows[i] for i in order]


@settings(max_examples=40, deadline=None)
@given(shuffled_calls(), st.integers(0, 15), st.sampled_from(["1/1", "60/60", "30/6"]))
def test_bundles_are_drawn_in_event_order_whatever_the_row_order(catalog_dir, calls,
                                                                  minutes, increments):
    rows, shuffled = calls
    catalog, compiled = _load(catalog_dir, f"""\
catalog: 1
currency: EUR
plans:
  - id: p
    default: true
    bundles: [{{name: minutes, service: voice, allowance: {minutes}, per: minute}}]
    charges: [{{service: voice, rate: "0.10", per: minute, increments: {increments}}}]
""")
    in_time = sorted(rows, key=lambda r: (r["started_at"], r["event_id"]))

    def covered(frame_rows):
        rated = rate_batch(_usage(frame_rows), catalog, compiled, None, "r")
        assert (rated["status"] == "rated").all()
        assert rated["usage_period_start"].n_unique() == 1
        return {r["event_id"]: (r["billed_quantity"], r["bundle_quantity"])
                for r in rated.iter_rows(named=True)}

    expected = covered(in_time)
    assert covered(shuffled) == expected
    allowance = minutes * 60
    for subscriber in ("S1", "S2"):
        used = 0
        for row in (r for r in in_time if r["subscriber_id"] == subscriber):
            billed, drawn = expected[row["event_id"]]
            # each event takes what its earlier events left, so none is skipped for a later one
            assert drawn == min(billed, allowance - used)
            used += drawn
        assert used <= allowance


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


# (service, per) pairs the catalog accepts, with charge units of 1, 60, 1000, 1024 and 7
UNITS = [("sms", "message"), ("voice", "minute"), ("data", "KB"), ("data", "KiB"),
         ("api", 7)]


@st.composite
def volume_tiers(draw):
    """One to four volume tiers with flat fees; bounds in the charge's units."""
    widths = draw(st.lists(st.integers(1, 40), min_size=0, max_size=3))
    rates = st.integers(0, 3_000_000_000).map(lambda n: str(Decimal(n) / NANOS))
    fees = st.integers(0, 5_000_000_000).map(lambda n: str(Decimal(n) / NANOS))
    bounds = np.cumsum(widths).tolist()
    tiers = [{"up_to": b, "rate": draw(rates), "flat_fee": draw(fees)} for b in bounds]
    return {"model": "volume", "tiers": [*tiers, {"rate": draw(rates), "flat_fee": draw(fees)}]}


def _volume_walk(tiers: Tiers, unit: int, total: int) -> tuple[Fraction, int]:
    """Walk the period total one charge unit at a time (the last one may be a part of a
    unit), moving on a tier whenever the walk passes a tier's inclusive ``up_to``; then
    every unit of the total costs the rate of the tier reached, plus that tier's flat fee."""
    if total == 0:
        return Fraction(0), 0
    reached, walked, left = 0, Fraction(0), Fraction(total, unit)
    while left > 0:
        step = min(left, Fraction(1))
        walked, left = walked + step, left - step
        while tiers.tiers[reached].up_to is not None and walked > tiers.tiers[reached].up_to:
            reached += 1
    tier = tiers.tiers[reached]
    per_quantity_unit = Fraction(Decimal(tier.rate)) / unit
    return per_quantity_unit * total + Fraction(Decimal(tier.flat_fee)), reached + 1


def _assert_volume_price(tiers: Tiers, unit: int, total: int) -> None:
    price, tier = volume_price(tiers, unit, total)
    exact, reached = _volume_walk(tiers, unit, total)
    assert tier == reached
    # volume_price divides in Decimal's 28 digits (a per-minute rate of one second has no
    # finite decimal): the difference must never reach the internal 9 places
    assert abs(Fraction(price) - exact) < Fraction(1, 10**15)
    assert _nanos(Fraction(price)) == _nanos(exact)


@settings(max_examples=200, deadline=None)
@given(volume_tiers(), st.sampled_from(UNITS), st.data())
def test_volume_price_is_a_walk_to_the_reached_tier_on_and_beside_its_bounds(raw, kind, data):
    service, per = kind
    charge = FlatCharge.model_validate({"service": service, "per": per, "tiers": raw})
    unit = charge.unit_size
    bounds = [t.up_to * unit for t in charge.tiers.tiers if t.up_to is not None]
    near = [b + d for b in bounds for d in (-1, 0, 1)]
    top = (bounds[-1] if bounds else 40 * unit) + 2 * unit
    total = data.draw(st.one_of(st.sampled_from([0, 1, *near]), st.integers(0, top)))
    _assert_volume_price(charge.tiers, unit, total)


def _billed_walk(quantity: int, first: int, step: int) -> int:
    """Units billed for one event: a first block, then one more block each time the usage
    passes what is already billed."""
    billed = 0
    while billed < quantity:
        billed += first if billed == 0 else step
    return billed


@settings(max_examples=40, deadline=None)
@given(volume_tiers(), st.sampled_from(UNITS),
       st.sampled_from([(1, 1), (60, 60), (30, 6), (1000, 1), (1024, 512)]), st.data())
def test_a_volume_period_total_is_billed_after_the_increments(catalog_dir, raw, kind, blocks,
                                                               data):
    service, per = kind
    first, step = blocks
    charge = {"service": service, "per": per, "increments": f"{first}/{step}", "tiers": raw}
    # events of up to 25 charge units: a few of them reach past every bound (at most 120)
    unit = FlatCharge.model_validate(charge).unit_size
    quantities = data.draw(st.lists(st.integers(0, 25 * unit), max_size=8))
    catalog, compiled = _load(catalog_dir, json.dumps(  # JSON is YAML
        {"catalog": 1, "currency": "EUR", "plans": [{"id": "p", "default": True,
                                                     "charges": [charge]}]}))
    rated = rate_batch(_usage([
        {"event_id": f"e{i}", "subscriber_id": "S1", "service": service, "quantity": q,
         "started_at": T0 + timedelta(minutes=i), "destination": "x"}
        for i, q in enumerate(quantities)]), catalog, compiled, None, "r")
    assert rated["billed_quantity"].to_list() == [_billed_walk(q, first, step)
                                                  for q in quantities]
    rated_charge = catalog.plan("p").charges[0]
    _assert_volume_price(rated_charge.tiers, unit, int(rated["billed_quantity"].sum()))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(-1, 1),
                          st.integers(0, 4)), max_size=12),
       st.booleans())
def test_rows_already_in_counter_order_are_recognised(rows, nan_period):
    """The consumption order skips its sort only for rows the sort would leave as they are."""
    from rating.cycle import _ordered

    keys = [np.array([r[k] for r in rows], dtype=np.int64) for k in range(4)]
    if nan_period and rows:
        keys[1] = keys[1].astype(float)
        keys[1][0] = np.nan
    as_sorted = sorted(rows) == rows
    assert _ordered(*keys) == (as_sorted and not (nan_period and rows and len(rows) > 1))
