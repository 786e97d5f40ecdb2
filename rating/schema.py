"""Columns rating adds to usage (DESIGN.md, "Rated usage"). One row per event."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from rules.money import DECIMAL_TYPE_ARGS

MONEY = pl.Decimal(*DECIMAL_TYPE_ARGS)

SPAN = pl.Struct({
    "band": pl.String,
    "slot": pl.Int32,
    "version": pl.Datetime("us", "UTC"),
    "billed_quantity": pl.Int64,
    "cost": MONEY,
})

RATED_COLUMNS: dict[str, pl.DataType] = {
    "status": pl.String(),            # rated | unrated
    "reason": pl.String(),            # why unrated; null when rated
    "plan_id": pl.String(),
    "tariff": pl.String(),            # plan/service whose charge priced the event
    "deck": pl.String(),
    "matched_prefix": pl.String(),
    "destination_name": pl.String(),
    "rate_id": pl.String(),           # a named rate of the catalog; null for a deck row's own
    "rate": MONEY,                    # price per rate unit (first part's slot)
    "rate_unit": pl.String(),         # minute, message, MB, ...
    "connect_fee": MONEY,
    "increments": pl.String(),        # first/next block, in quantity units
    "billed_quantity": pl.Int64(),    # after minimum and increments
    "bundle_quantity": pl.Int64(),    # of billed_quantity, units covered by bundles
    "bundles": pl.List(pl.Struct({"bundle": pl.String, "quantity": pl.Int64})),
    "tier": pl.Int32(),               # graduated charges: the tier the event ends in
    "amount": MONEY,                  # before cycle-level discounts and tax
    "flags": pl.String(),             # max_cost: over the cap, for a disconnect policy
    "currency": pl.String(),
    "customer_id": pl.String(),       # who is billed: the subscription's customer
    "period_start": pl.Datetime("us", "UTC"),  # the customer's billing period [start, end)
    "period_end": pl.Datetime("us", "UTC"),
    "cycle_start": pl.Date(),         # the period's bounds as local dates in its zone
    "cycle_end": pl.Date(),
    "late": pl.Boolean(),             # arrived after its own period closed: billed later
    "usage_period_start": pl.Datetime("us", "UTC"),  # own period: its bundles and tiers
    "spans": pl.List(SPAN),
    "run_id": pl.String(),
}

RATED = "rated"
UNRATED = "unrated"

# Reasons rating adds to those of ingest.
NO_SUBSCRIPTION = "no_subscription"  # no account and no default plan
NO_TARIFF = "no_tariff"              # the plan does not price this service
NO_RATE = "no_rate"                  # no prefix of the destination is in the deck
NO_BAND = "no_band"                  # part of the event falls in no band of its destination
OVERFLOW = "overflow"                # its exact amount would leave 64-bit integers


def string_views(values: list[str], index: np.ndarray) -> pa.Array:
    """``values[index]`` as Arrow string views, to build nested columns with: gathered by
    Polars, which copies a short string's 16-byte view rather than its bytes, and taken
    back by Polars uncopied."""
    return pl.Series(values, dtype=pl.String).gather(index).to_arrow(
        compat_level=pl.CompatLevel.newest())
