"""Which billing period each event falls in: its customer's cycle, in the customer's zone
(the plan's zone, then the catalog's, when the customer names none)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from rules import Accounts, Catalog
from rules.cycles import Cycle, periods

from .calendar import from_micros, micros
from .plans import subscription_of

MONTHLY = Cycle("monthly")


def billing_periods(usage: pl.DataFrame, plan: pl.Series, catalog: Catalog,
                    accounts: Accounts | None, held: pl.DataFrame | None = None
                    ) -> pl.DataFrame:
    """customer_id; period_start/period_end, the period whose bill holds the event (UTC
    instants, [start, end)); cycle_start/cycle_end, the same bounds as local dates in the
    customer's zone; and ``late``, set when the event arrived after its own period had
    closed (with the catalog's ``collection_window_hours``) and is billed on a later one;
    ``usage_period_start``, the start of the event's own period, whose bundles and tiers it
    counts in even when it is billed later. ``held``: :func:`subscription_of` the usage,
    when the caller has it already."""
    n = len(usage)
    customer = usage["subscriber_id"]
    if accounts is not None:
        held = held if held is not None else subscription_of(usage, accounts)
        customer = held["customer_id"].fill_null(customer)
    plan_zone = {p.id: catalog.plan_zone(p) for p in catalog.model.plans}
    zone = plan.replace_strict(plan_zone, default=catalog.model.timezone,
                               return_dtype=pl.String)
    specs: dict[str, Cycle] = {repr(MONTHLY): MONTHLY}
    spec = pl.Series([repr(MONTHLY)] * n, dtype=pl.String)
    if accounts is not None and accounts.customers:
        # per distinct customer, not per event: a customer's zone and cycle
        known = {cid: c for cid in customer.unique().to_list()
                 if (c := accounts.customers.get(cid)) is not None}
        spec_of = {}
        for cid, c in known.items():
            cycle = c.cycle.cycle()
            spec_of[cid] = repr(cycle)
            specs.setdefault(spec_of[cid], cycle)
        zone = customer.replace_strict({k: c.timezone for k, c in known.items() if c.timezone},
                                       default=None, return_dtype=pl.String).fill_null(zone)
        spec = customer.replace_strict(spec_of, default=repr(MONTHLY), return_dtype=pl.String)
    keys = pl.DataFrame({"zone": zone, "spec": spec}).with_row_index("row")

    def bounds_of(at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        start = np.zeros(n, dtype=np.int64)
        end = np.zeros(n, dtype=np.int64)
        for (zone_name, spec_key), group in keys.group_by(["zone", "spec"]):
            rows = group["row"].to_numpy()
            lo = from_micros(int(at[rows].min()))
            hi = from_micros(int(at[rows].max())) + timedelta(microseconds=1)
            bounds = periods(specs[spec_key], zone_name, lo, hi)
            starts = np.array([micros(p.start) for p in bounds], dtype=np.int64)
            ends = np.array([micros(p.end) for p in bounds], dtype=np.int64)
            k = np.searchsorted(starts, at[rows], side="right") - 1
            start[rows], end[rows] = starts[k], ends[k]
        return start, end

    start, end = bounds_of(usage["started_at"].dt.epoch("us").fill_null(0).to_numpy())
    own_start = start
    late = np.zeros(n, dtype=bool)
    window = catalog.model.collection_window_hours
    if window is not None and n:
        # A period closes at its end plus the collection window, judged on ingested_at;
        # usage that arrives later is billed on the period open when it arrived.
        arrived = usage["ingested_at"].dt.epoch("us").fill_null(0).to_numpy()
        late = arrived >= end + window * 3_600_000_000
        if late.any():
            open_start, open_end = bounds_of(arrived)
            start = np.where(late, open_start, start)
            end = np.where(late, open_end, end)
    instant = pl.Datetime("us", "UTC")
    out = pl.DataFrame({
        "customer_id": customer,
        "period_start": pl.Series(start).cast(instant),
        "period_end": pl.Series(end).cast(instant),
        "late": pl.Series(late, dtype=pl.Boolean),
        "usage_period_start": pl.Series(own_start).cast(instant),
        "_zone": zone,
    })
    # local dates per distinct (period, zone), a few per customer, joined back
    bounds = out.select("period_start", "period_end", "_zone").unique()
    local = pl.concat([
        part.with_columns(
            cycle_start=pl.col("period_start").dt.convert_time_zone(z).dt.date(),
            cycle_end=pl.col("period_end").dt.convert_time_zone(z).dt.date())
        for (z,), part in bounds.group_by("_zone")
    ]) if n else bounds.with_columns(cycle_start=pl.lit(None, pl.Date),
                                     cycle_end=pl.lit(None, pl.Date))
    return out.join(local, on=["period_start", "period_end", "_zone"], how="left",
                    maintain_order="left").drop("_zone")


