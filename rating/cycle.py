"""Pricing that depends on a subscriber's whole billing period: bundles and graduated tiers.

Both walk a subscriber's events of one period in time order (events of one subscriber are
in one bucket, so a bucket holds all it needs) and continue from what earlier batches of
the same output already used (``earlier``: their rated rows), so across nightly batches
usage draws in arrival order and within a batch in event order. A late event counts in its
own period (``usage_period_start``), priced against that period's bundles and tiers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl
import pyarrow as pa

from rules import Catalog
from rules.catalog import FlatCharge, Tiers
from rules.money import INT64_MAX, round_nanos, to_nanos

from .errors import RatingError
from .kernels.bundles import draw_bundles
from .plans import subscriber_codes
from .schema import string_views

BUNDLE_DRAW = pl.Struct({"bundle": pl.String, "quantity": pl.Int64})
COUNTER_KEYS = ["subscriber_id", "usage_period_start", "plan_id"]


def _ordered(*keys: np.ndarray) -> bool:
    """Whether rows are already in ascending order of ``keys`` (the first key first)."""
    if len(keys[0]) < 2:
        return True
    undecided = np.ones(len(keys[0]) - 1, dtype=bool)  # pairs equal on the keys so far
    for key in keys:
        if key.dtype.kind == "f" and np.isnan(key).any():
            return False  # the sort decides where those go
        before, after = key[:-1], key[1:]
        if (undecided & (after < before)).any():
            return False
        undecided &= after == before
    return True


@dataclass(frozen=True)
class Counters:
    """What places a batch's events in their counters, per event as integers: the
    subscriber (a code dense in the batch), the start of the event's own billing period
    (µs), its plan (a place in ``plan_ids``, -1: none) and its start (µs); and, to name a
    counter to earlier batches, the subscriber ids and own period starts themselves.
    ``codes``: the subscriber codes, when the caller has them; otherwise they are computed
    when a counter is first needed (a catalog without bundles or tiers needs none)."""

    period: np.ndarray
    plan: np.ndarray
    at: np.ndarray
    event_id: pl.Series
    subscriber_id: pl.Series
    own_start: pl.Series
    plan_ids: list[str]
    codes: np.ndarray | None = None

    @cached_property
    def subscriber(self) -> np.ndarray:
        return self.codes if self.codes is not None else subscriber_codes(self.subscriber_id)

    def in_order(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``rows`` in consumption order: by counter (subscriber, own period, plan), then
        start, then event id. Returns the rows in that order, each one's counter (numbered
        from 0 in that order) and whether it is its counter's first."""
        s, p, q, a = (k[rows] for k in (self.subscriber, self.period, self.plan, self.at))
        if _ordered(s, p, q, a):  # as ingest writes a bucket: by subscriber and start
            order = rows.copy()
        else:
            order = pl.DataFrame({"s": s, "p": p, "q": q, "a": a, "row": rows}).sort(
                "s", "p", "q", "a")["row"].to_numpy(writable=True)
            s, p, q, a = (k[order] for k in (self.subscriber, self.period, self.plan, self.at))
        same = (s[1:] == s[:-1]) & (p[1:] == p[:-1]) & (q[1:] == q[:-1])
        tie = same & (a[1:] == a[:-1])
        if tie.any():  # events of one counter starting together go in event id order
            run = np.cumsum(np.append(True, ~tie)) - 1
            (tied,) = np.nonzero(np.bincount(run)[run] > 1)
            order[tied] = pl.DataFrame({"run": run[tied], "event_id": self.event_id.gather(
                order[tied]), "row": order[tied]}).sort("run", "event_id")["row"].to_numpy()
        first = np.append(True, ~same) if len(order) else np.zeros(0, dtype=bool)
        return order, np.cumsum(first) - 1, first

    def names(self, heads: np.ndarray) -> pl.DataFrame:
        """COUNTER_KEYS and ``counter`` of the counters whose first rows are ``heads``."""
        plan = pl.Series(self.plan_ids, dtype=pl.String).gather(self.plan[heads])
        return pl.DataFrame({"subscriber_id": self.subscriber_id.gather(heads),
                             "usage_period_start": self.own_start.gather(heads),
                             "plan_id": plan, "counter": np.arange(len(heads))})


@dataclass(frozen=True)
class Draws:
    covered: np.ndarray  # units of each event covered by bundles
    waive_connect: np.ndarray  # the event is wholly covered by a bundle that waives it
    column: pl.Series  # per event: [{bundle, quantity}], empty when none


def draw(counters: Counters, service: pl.Series, band: pl.Series, destination: pl.Series,
         billed: np.ndarray, rated: np.ndarray, catalog: Catalog,
         earlier: pl.DataFrame | None) -> Draws:
    """Draw each rated event's billed units from its plan's bundles, in time order."""
    n = len(billed)
    plan = counters.plan
    plans = {k: p for k, p in enumerate(catalog.model.plans) if p.bundles}

    def none() -> Draws:
        return Draws(np.zeros(n, np.int64), np.zeros(n, bool),
                     _draws_column(_flat_draws(np.zeros((n, 0), np.int64), plan, {}), n))

    if not plans or not n:
        return none()
    frame = pl.DataFrame({"service": service, "band": band, "destination": destination})
    eligible = np.zeros(n, dtype=np.uint64)
    for k, p in plans.items():
        held = (plan == k) & rated
        for b, bundle in enumerate(p.bundles):
            cond = pl.col("service") == bundle.service
            if bundle.destinations:
                cond &= pl.col("destination").is_in(bundle.destinations)
            if bundle.bands:
                cond &= pl.col("band").is_in(bundle.bands)
            hit = frame.select(cond.fill_null(False)).to_series().to_numpy() & held
            eligible |= np.where(hit, np.uint64(1 << b), np.uint64(0))
    if not eligible.any():
        return none()
    # Counters draw independently, so each counter's events in time order is the order of
    # consumption.
    order, counter, first = counters.in_order(np.flatnonzero(eligible))
    heads = order[first]
    width = max(len(p.bundles) for p in plans.values())
    left = np.zeros((len(heads), width), dtype=np.int64)
    for k, p in plans.items():
        at = plan[heads] == k
        for b, bundle in enumerate(p.bundles):
            left[at, b] = bundle.quantity
    if earlier is not None and len(earlier):
        used = _earlier_draws(earlier, counters.names(heads), plans)
        np.subtract.at(left, (used["counter"], used["b"]), used["quantity"])
        np.maximum(left, 0, out=left)
    sorted_take = np.zeros((len(order), width), dtype=np.int64)
    covered_sorted = draw_bundles(counter, eligible[order], billed[order], left, sorted_take)
    covered = np.zeros(n, dtype=np.int64)
    covered[order] = covered_sorted
    take = np.zeros((n, width), dtype=np.int64)
    take[order] = sorted_take
    flat = _flat_draws(take, plan, plans)
    return Draws(covered, _waived(flat, covered, billed), _draws_column(flat, len(plan)))


def _bundle_table(plans: dict) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Per plan code, the offset of its bundles in one flat list; the flat names and waive
    flags."""
    offset = np.zeros(max(plans, default=0) + 1, dtype=np.int64)
    names, waived = [], []
    for k, p in plans.items():
        offset[k] = len(names)
        names += [b.name for b in p.bundles]
        waived += [b.connect_fee == "waived" for b in p.bundles]
    return offset, names, np.array(waived, dtype=bool)


def _flat_draws(take: np.ndarray, plan: np.ndarray, plans: dict):
    """Every (event, flat bundle index, units) with units > 0, by event."""
    offset, names, waived = _bundle_table(plans)
    row, b = np.nonzero(take)
    return row, offset[plan[row]] + b, take[row, b], names, waived


def _waived(flat_draws, covered, billed) -> np.ndarray:
    """Events wholly covered by bundles that all waive the connect fee."""
    row, flat, _, _, waived = flat_draws
    charging = np.bincount(row[~waived[flat]], minlength=len(billed))
    return (covered > 0) & (covered == billed) & (charging == 0)


def _draws_column(flat_draws, n: int) -> pl.Series:
    """Each of ``n`` events' draws as a list of {bundle, quantity} (empty: none)."""
    row, flat, units, names, _ = flat_draws
    struct = pa.StructArray.from_arrays(
        [string_views(names, flat),
         pa.array(units, pa.int64())], names=["bundle", "quantity"])
    offsets = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n))])
    lists = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), struct)
    return pl.from_arrow(lists).alias("bundles").cast(pl.List(BUNDLE_DRAW))


def _earlier_draws(earlier: pl.DataFrame, keys: pl.DataFrame, plans: dict) -> dict:
    """What earlier batches drew from each counter's bundles: counter, bundle index, units."""
    index = pl.DataFrame(
        [(p.id, b.name, k) for p in plans.values() for k, b in enumerate(p.bundles)],
        schema={"plan_id": pl.String, "bundle": pl.String, "b": pl.Int64}, orient="row")
    used = (earlier.filter(pl.col("status") == "rated")
            .select(*COUNTER_KEYS, "bundles").explode("bundles").unnest("bundles")
            .drop_nulls("quantity")
            .join(index, on=["plan_id", "bundle"])
            .join(keys, on=COUNTER_KEYS)
            .group_by("counter", "b").agg(pl.col("quantity").sum()))
    return {c: used[c].to_numpy() for c in ("counter", "b", "quantity")}


def graduated_price(tiers: Tiers, unit: int, x: np.ndarray) -> np.ndarray:
    """The exact price in nanos (rounded half up once) of the first ``x`` units (quantity
    units) of a period under graduated ``tiers`` priced per ``unit`` quantity units."""
    x = np.asarray(x, dtype=np.int64)
    whole = np.zeros(len(x), dtype=np.int64)  # rate * whole units of `unit`
    part = np.zeros(len(x), dtype=np.int64)  # rate * remainder, still to divide by unit
    low = 0
    for tier in tiers.tiers:
        rate = to_nanos(tier.rate)
        if rate * unit * len(tiers.tiers) > INT64_MAX // 2:
            raise RatingError(f"tier rate {tier.rate} per {unit} units is too large to price "
                              "exactly in 64-bit integers")
        high = None if tier.up_to is None else tier.up_to * unit
        inside = np.maximum(x - low, 0)
        if high is not None:
            inside = np.minimum(inside, high - low)
        q, r = np.divmod(inside, unit)
        whole += rate * q
        part += rate * r
        if high is None:
            break
        low = high
    return whole + round_nanos(part, unit)


def tier_of(tiers: Tiers, unit: int, x: np.ndarray) -> np.ndarray:
    """The tier (1-based) that unit number ``x`` of a period falls in (0 for x = 0)."""
    bounds = np.array([t.up_to * unit for t in tiers.tiers[:-1]], dtype=np.int64)
    return np.where(np.asarray(x) > 0, np.searchsorted(bounds, x, side="left") + 1, 0)


def graduated(counters: Counters, tariff: np.ndarray, charges: list,
              chargeable: np.ndarray, rated: np.ndarray, earlier: pl.DataFrame | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Price events of graduated charges by their place in the period's usage, in time order:
    an event's cost is G(before + q) - G(before), so a period's events sum to exactly the
    graduated price of its total. Returns (mask of such events, cost nanos, tier)."""
    n = len(tariff)
    mask = np.zeros(n, dtype=bool)
    cost = np.zeros(n, dtype=np.int64)
    tier = np.zeros(n, dtype=np.int32)
    for t, charge in enumerate(charges):
        if not (isinstance(charge, FlatCharge) and charge.tiers is not None
                and charge.tiers.model == "graduated"):
            continue
        rows = np.flatnonzero((tariff == t) & rated)
        if not len(rows):
            continue
        at, counter, first = counters.in_order(rows)
        q = chargeable[at]
        done = np.zeros(int(counter[-1]) + 1, dtype=np.int64)
        if earlier is not None and len(earlier):
            used = (earlier.filter((pl.col("status") == "rated")
                                   & (pl.col("service") == charge.service))
                    .group_by(COUNTER_KEYS)
                    .agg(done=(pl.col("billed_quantity") - pl.col("bundle_quantity")).sum())
                    .join(counters.names(at[first]), on=COUNTER_KEYS))
            done[used["counter"].to_numpy()] = used["done"].to_numpy()
        so_far = np.cumsum(q) - q  # units of the events before, over all counters
        before = so_far - so_far[first][counter] + done[counter]
        after = before + q
        unit = charge.unit_size
        cost[at] = graduated_price(charge.tiers, unit, after) - graduated_price(
            charge.tiers, unit, before)
        tier[at] = tier_of(charge.tiers, unit, after)
        mask[at] = True
    return mask, cost, tier
