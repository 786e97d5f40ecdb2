"""Which billing period each event falls in: its customer's cycle, in the customer's zone
(the plan's zone, then the catalog's, when the customer names none)."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from rules import Accounts, Catalog
from rules.cycles import Cycle, periods

from .calendar import from_micros, micros
from .plans import subscription_of

MONTHLY = Cycle("monthly")
EPOCH_DAY = date(1970, 1, 1)


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
    cycles, case = _cases(customer, plan, catalog, accounts)

    def bounds_of(at: np.ndarray):
        """Per event: the period holding ``at`` (UTC µs) and its local dates (days since
        1970-01-01 in the case's zone)."""
        start, end = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        local_start, local_end = np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.int32)
        for (zone_name, cycle), rows in zip(cycles, _rows_by_case(case, len(cycles)),
                                            strict=True):
            at_rows = at[rows]
            if not len(at_rows):
                continue
            lo = from_micros(int(at_rows.min()))
            hi = from_micros(int(at_rows.max())) + timedelta(microseconds=1)
            bounds = periods(cycle, zone_name, lo, hi)
            zone = ZoneInfo(zone_name)
            starts = np.array([micros(p.start) for p in bounds], dtype=np.int64)
            ends = np.array([micros(p.end) for p in bounds], dtype=np.int64)
            days = np.array([((p.start.astimezone(zone).date() - EPOCH_DAY).days,
                              (p.end.astimezone(zone).date() - EPOCH_DAY).days)
                             for p in bounds], dtype=np.int32).reshape(-1, 2)
            i = np.searchsorted(starts, at_rows, side="right") - 1
            start[rows], end[rows] = starts[i], ends[i]
            local_start[rows], local_end[rows] = days[i, 0], days[i, 1]
        return start, end, local_start, local_end

    start, end, local_start, local_end = bounds_of(
        usage["started_at"].dt.epoch("us").fill_null(0).to_numpy())
    own_start = start
    late = np.zeros(n, dtype=bool)
    window = catalog.model.collection_window_hours
    if window is not None and n:
        # A period closes at its end plus the collection window, judged on ingested_at;
        # usage that arrives later is billed on the period open when it arrived.
        arrived = usage["ingested_at"].dt.epoch("us").fill_null(0).to_numpy()
        late = arrived >= end + window * 3_600_000_000
        if late.any():
            later = bounds_of(arrived)
            start, end, local_start, local_end = (np.where(late, b, a) for a, b in zip(
                (start, end, local_start, local_end), later, strict=True))
    instant = pl.Datetime("us", "UTC")
    return pl.DataFrame({
        "customer_id": customer,
        "period_start": pl.Series(start).cast(instant),
        "period_end": pl.Series(end).cast(instant),
        "cycle_start": pl.Series(local_start, dtype=pl.Int32).cast(pl.Date),
        "cycle_end": pl.Series(local_end, dtype=pl.Int32).cast(pl.Date),
        "late": pl.Series(late, dtype=pl.Boolean),
        "usage_period_start": pl.Series(own_start).cast(instant),
    })


def _cases(customer: pl.Series, plan: pl.Series, catalog: Catalog,
           accounts: Accounts | None) -> tuple[list[tuple[str, Cycle]], np.ndarray | None]:
    """The (zone, cycle) cases of the events' customers and each event's case (None: all
    of the one case). A customer's own zone, else its plan's, so per (customer, plan) only
    when the plans bill in different zones; customers the accounts do not list are billed
    monthly. When every customer the accounts list, and any they do not, falls in one case,
    no customer is looked at."""
    zones = {catalog.plan_zone(p) for p in catalog.model.plans} | {catalog.model.timezone}
    if len(zones) == 1:
        (zone,) = zones
        possible = {(zone, MONTHLY)} | {
            (own or zone, cycle)
            for own, cycle in (accounts.zones_and_cycles if accounts is not None else ())}
        if len(possible) == 1:
            return list(possible), None
    frame = pl.DataFrame({"customer": customer, "plan": plan})
    by = ["customer"] if len(zones) == 1 else ["customer", "plan"]
    keys = frame.select(by).unique()
    customers = accounts.customers if accounts is not None else {}
    cases: dict[tuple[str, Cycle], int] = {}  # (zone, cycle) -> case number
    cycle_of: dict[int, Cycle] = {}  # per customer's cycle spec, built once
    case_of = np.zeros(len(keys), dtype=np.int64)
    plans = keys["plan"].to_list() if "plan" in keys.columns else [None] * len(keys)
    for k, (cid, pid) in enumerate(zip(keys["customer"].to_list(), plans, strict=True)):
        c = customers.get(cid)
        zone = (c and c.timezone) or (catalog.plan_zone(catalog.plan(pid)) if pid
                                      else catalog.model.timezone)
        if c is None:
            cycle = MONTHLY
        elif (cycle := cycle_of.get(id(c.cycle))) is None:
            cycle = cycle_of[id(c.cycle)] = c.cycle.cycle()
        case_of[k] = cases.setdefault((zone, cycle), len(cases))
    if len(cases) < 2:
        return list(cases) or [(catalog.model.timezone, MONTHLY)], None
    case = frame.join(keys.with_columns(case=pl.Series(case_of)), on=by, how="left",
                      nulls_equal=True, maintain_order="left")["case"].to_numpy()
    return list(cases), case


def _rows_by_case(case: np.ndarray | None, cases: int) -> list[slice | np.ndarray]:
    """The rows of each case, in row order (all rows, as a slice, when there is one)."""
    if case is None:
        return [slice(None)]
    order = np.argsort(case, kind="stable")
    edges = np.searchsorted(case[order], np.arange(cases + 1))
    return [order[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]
