"""Bill lines priced from a period's usage as a whole, and what bundles have left.

- volume tiers and packages (``tiers: {model: volume}``, ``package``): the events of such a
  charge carry no usage price; one line per subscriber, plan and period prices their
  total. Usage that arrives late (after its period closed) is priced against its own
  period: its line holds the difference between the period's price with and without it.
- daily rounding (``daily_increment``): each subscriber's usage of the charge per day in
  the customer's zone is rounded up; the units added are a ``daily_rounding`` line.
- minimum and maximum per period (``min_per_period``, ``max_per_period``): a
  ``period_minimum`` line tops a subscriber's usage of the charge in a bill up to the
  minimum; a ``period_cap`` line (negative) takes off what is above the maximum.
- bundle balances: per subscriber, plan, period and bundle, the allowance, what events
  drew from it and what is left.
"""

from __future__ import annotations

from decimal import Decimal

import duckdb
import polars as pl

from rules import Accounts, Catalog
from rules.catalog import FlatCharge, Package, Tiers
from rules.money import round_decimal

from .schema import USAGE_LINE_SCHEMA


def _charges(catalog: Catalog, wanted) -> dict[tuple[str, str], FlatCharge]:
    return {(p.id, c.service): c for p in catalog.model.plans for c in p.charges
            if isinstance(c, FlatCharge) and wanted(c)}


def _rated(con: duckdb.DuckDBPyConnection, files: list[str], keys,
           columns: str) -> pl.DataFrame:
    """Rated rows of the given (plan, service) charges (none when there are no rated
    files)."""
    if not keys or not files:
        return pl.DataFrame()
    wanted = pl.DataFrame(list(keys), schema={"plan_id": pl.String, "service": pl.String},
                          orient="row")
    con.register("wanted_charges", wanted.to_arrow())
    try:
        return con.sql(f"""
            SELECT {columns} FROM rated_usage
            SEMI JOIN wanted_charges USING (plan_id, service)
            WHERE status = 'rated'""").pl()
    finally:
        con.unregister("wanted_charges")


def volume_price(tiers: Tiers, unit: int, quantity: int) -> tuple[Decimal, int]:
    """Every unit at the price of the tier the total reaches (an upper bound is inclusive):
    (exact price, tier number)."""
    if quantity <= 0:
        return Decimal(0), 0
    for k, tier in enumerate(tiers.tiers, start=1):
        if tier.up_to is None or quantity <= tier.up_to * unit:
            return Decimal(tier.rate) * quantity / unit + Decimal(tier.flat_fee), k
    raise AssertionError("the last tier has no upper bound")


def package_price(package: Package, unit: int, quantity: int) -> tuple[Decimal, int]:
    """``price`` per started package after the free units: (exact price, packages)."""
    over = max(quantity - package.free * unit, 0)
    count = -(-over // (package.size * unit))
    return Decimal(package.price) * count, count


def _cycle_price(charge: FlatCharge, quantity: int) -> tuple[Decimal, str]:
    if charge.package is not None:
        price, count = package_price(charge.package, charge.unit_size, quantity)
        return price, f"{charge.service}: {count} packages"
    price, tier = volume_price(charge.tiers, charge.unit_size, quantity)
    return price, f"{charge.service}: volume tier {tier}"


def cycle_priced(catalog: Catalog) -> pl.DataFrame:
    """The (plan_id, service) of charges priced from the period's total."""
    return pl.DataFrame(list(_charges(catalog, lambda c: c.cycle_priced)),
                        schema={"plan_id": pl.String, "service": pl.String}, orient="row")


def cycle_priced_lines(con, catalog: Catalog, files: list[str]) -> pl.DataFrame:
    """One line per subscriber, plan, service and bill: the period's price of the usage
    (with the events' own charges, such as connect fees)."""
    charges = _charges(catalog, lambda c: c.cycle_priced)
    rows = _rated(con, files, charges, """
        customer_id, period_start, period_end, cycle_start, cycle_end, currency,
        subscriber_id, plan_id, service, usage_period_start, late,
        billed_quantity - bundle_quantity AS q, amount""")
    out = []
    if rows.is_empty():
        return pl.DataFrame(schema=USAGE_LINE_SCHEMA)
    own = ["subscriber_id", "plan_id", "service", "usage_period_start"]
    bill = ["customer_id", "period_start", "period_end", "cycle_start", "cycle_end",
            "currency"]
    grouped = (rows.group_by(*own, *bill, "late")
               .agg(events=pl.len(), q=pl.col("q").sum(), fees=pl.col("amount").sum())
               .sort(*own, "late", "period_start"))
    for _, parts in grouped.group_by(own, maintain_order=True):
        charge = charges[(parts["plan_id"][0], parts["service"][0])]
        so_far, priced = 0, Decimal(0)
        for part in parts.iter_rows(named=True):
            so_far += part["q"]
            price, name = _cycle_price(charge, so_far)
            out.append({**{k: part[k] for k in (*bill, "subscriber_id", "plan_id", "service")},
                        "destination_name": name, "events": part["events"],
                        "quantity": part["q"], "billed_quantity": part["q"],
                        "amount_exact": round_decimal(price - priced + part["fees"], 9),
                        "line_type": "late_usage" if part["late"] else "cycle_usage"})
            priced = price
    return pl.DataFrame(out, schema=USAGE_LINE_SCHEMA)


def _zone_of(catalog: Catalog, accounts: Accounts | None, customer_id: str, plan_id: str):
    customer = accounts.customer(customer_id) if accounts else None
    return (customer and customer.timezone) or catalog.plan_zone(catalog.plan(plan_id))


def daily_rounding_lines(con, catalog: Catalog, accounts: Accounts | None,
                         files: list[str]) -> pl.DataFrame:
    charges = _charges(catalog, lambda c: c.daily_increment is not None)
    rows = _rated(con, files, charges, """
        customer_id, period_start, period_end, cycle_start, cycle_end, currency,
        subscriber_id, plan_id, service, started_at,
        billed_quantity - bundle_quantity AS q""")
    if rows.is_empty():
        return pl.DataFrame(schema=USAGE_LINE_SCHEMA)
    keys = rows.select("customer_id", "plan_id").unique()
    zones = keys.with_columns(zone=pl.Series(
        [_zone_of(catalog, accounts, c, p) for c, p in keys.iter_rows()], dtype=pl.String))
    rows = rows.join(zones, on=["customer_id", "plan_id"])
    day = pl.lit(None, pl.Date)
    for zone in zones["zone"].unique().to_list():
        day = pl.when(pl.col("zone") == zone).then(
            pl.col("started_at").dt.convert_time_zone(zone).dt.date()).otherwise(day)
    line = ["customer_id", "period_start", "period_end", "cycle_start", "cycle_end",
            "currency", "subscriber_id", "plan_id", "service"]
    days = rows.with_columns(day=day).group_by(*line, "day").agg(q=pl.col("q").sum())
    out = []
    for part in days.group_by(line, maintain_order=True).agg(
            pl.col("q"), days=pl.len()).sort(line).iter_rows(named=True):
        charge = charges[(part["plan_id"], part["service"])]
        step = charge.daily_increment
        added = sum(-(-q // step) * step - q for q in part["q"])
        if not added:
            continue
        out.append({**{k: part[k] for k in line},
                    "destination_name": f"{charge.service}: rounded up to {step} per day",
                    "events": 0, "quantity": 0, "billed_quantity": added,
                    "amount_exact": round_decimal(
                        Decimal(charge.rate) * added / charge.unit_size, 9),
                    "line_type": "daily_rounding"})
    return pl.DataFrame(out, schema=USAGE_LINE_SCHEMA)


def bundle_balances(con, catalog: Catalog, files: list[str]) -> pl.DataFrame:
    """Per subscriber, plan, period (its own start) and bundle: allowance, used, left."""
    schema = {"customer_id": pl.String, "subscriber_id": pl.String, "plan_id": pl.String,
              "usage_period_start": pl.Datetime("us", "UTC"), "bundle": pl.String,
              "service": pl.String, "allowance": pl.Int64, "used": pl.Int64,
              "left": pl.Int64}
    bundles = pl.DataFrame(
        [(p.id, b.name, b.service, b.quantity) for p in catalog.model.plans
         for b in p.bundles],
        schema={"plan_id": pl.String, "bundle": pl.String, "service": pl.String,
                "allowance": pl.Int64}, orient="row")
    if bundles.is_empty() or not files:
        return pl.DataFrame(schema=schema)
    # in the database: the events' bundle draws are many, the balances few
    con.register("plan_bundles", bundles.to_arrow())
    try:
        return con.sql("""
            WITH held AS (
                SELECT customer_id, subscriber_id, plan_id, usage_period_start, bundles
                FROM rated_usage
                SEMI JOIN (SELECT DISTINCT plan_id, service FROM plan_bundles)
                    USING (plan_id, service)
                WHERE status = 'rated'),
            used AS (
                SELECT customer_id, subscriber_id, plan_id, usage_period_start,
                       draw.bundle AS bundle, sum(draw.quantity) AS used
                FROM (SELECT *, unnest(bundles) AS draw FROM held)
                GROUP BY ALL)
            SELECT customer_id, subscriber_id, plan_id, usage_period_start, bundle, service,
                   allowance, coalesce(used, 0) AS used, allowance - coalesce(used, 0) AS left
            FROM (SELECT DISTINCT customer_id, subscriber_id, plan_id, usage_period_start
                  FROM held)
            JOIN plan_bundles USING (plan_id)
            LEFT JOIN used USING (customer_id, subscriber_id, plan_id, usage_period_start,
                                  bundle)
            ORDER BY customer_id, subscriber_id, plan_id, usage_period_start, bundle
        """).pl().cast(schema)
    finally:
        con.unregister("plan_bundles")


PERIOD_PRICED = ("usage", "cycle_usage", "daily_rounding")


def period_limit_lines(lines: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    """Lines bringing each subscriber's usage of a charge in a bill (its exact amounts, late
    usage of other periods aside) within the charge's minimum and maximum per period."""
    limits = {(p.id, c.service): (c.min_per_period, c.max_per_period)
              for p in catalog.model.plans for c in p.charges
              if c.min_per_period is not None or c.max_per_period is not None}
    if not limits or lines.is_empty():
        return pl.DataFrame(schema=USAGE_LINE_SCHEMA)
    keys = ["customer_id", "period_start", "period_end", "cycle_start", "cycle_end",
            "currency", "subscriber_id", "plan_id", "service"]
    totals = (lines.filter(pl.col("line_type").is_in(PERIOD_PRICED))
              .group_by(keys).agg(pl.col("amount_exact").sum()).sort(keys))
    out = []
    for row in totals.iter_rows(named=True):
        low, high = limits.get((row["plan_id"], row["service"]), (None, None))
        total = row["amount_exact"]
        if low is not None and total < Decimal(low):
            change, kind = Decimal(low) - total, "period_minimum"
        elif high is not None and total > Decimal(high):
            change, kind = Decimal(high) - total, "period_cap"
        else:
            continue
        out.append({**{k: row[k] for k in keys},
                    "destination_name": f"{row['service']}: {kind.replace('_', ' ')}",
                    "events": 0, "quantity": 0, "billed_quantity": 0,
                    "amount_exact": round_decimal(change, 9), "line_type": kind})
    return pl.DataFrame(out, schema=USAGE_LINE_SCHEMA)
