"""Bill totals from rated events, as DuckDB SQL, independent of ratecycle's bills/.

A bill is a customer's billing period. Its lines are the rated events summed per
subscriber, plan, service and destination name, each line rounded half up once to the
currency's minor unit; a percentage discount the customer holds takes its share of each
line with a positive amount, rounded half up per line; each exclusive plan tax is charged
on the discounted lines of the bill and rounded half up once per bill. The total is
lines - discounts + taxes. Everything is integer arithmetic on minor units (HUGEINT).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from .oracle_spec import UnsupportedTariff, read_accounts, read_spec

BILL_SCHEMA = {"customer_id": pl.String, "period_start": pl.Datetime("us", "UTC"),
               "subtotal": pl.Decimal(38, 9), "discount": pl.Decimal(38, 9),
               "tax": pl.Decimal(38, 9), "total": pl.Decimal(38, 9)}


def _frame(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    con.register(f"{name}_frame", frame.to_arrow())
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_frame")
    con.unregister(f"{name}_frame")


def bill_totals(con: duckdb.DuckDBPyConnection, rated: str, catalog: str | Path,
                accounts: str | Path | None = None) -> pl.DataFrame:
    """Per bill (customer_id, period_start): subtotal, discount, tax, total. ``rated``: a
    table or table function with subscriber_id, status, plan_id, service,
    destination_name, amount and usage_period_start (an oracle's rated output with the
    usage columns)."""
    spec = read_spec(catalog)
    billing = spec.billing
    held = read_accounts(accounts)
    discounts = held.select("customer_id", "discounts").explode("discounts").drop_nulls()
    discounts = discounts.unique()
    if discounts["customer_id"].is_duplicated().any():
        raise UnsupportedTariff("bills: one discount per customer is implemented")
    unknown = set(discounts["discounts"]) - set(billing.discounts)
    if unknown:
        raise UnsupportedTariff(f"accounts hold discounts the catalog lacks: {unknown}")
    _frame(con, "bill_customers", held.select("subscriber_id", "customer_id"))
    _frame(con, "bill_discounts", discounts.select(
        "customer_id",
        num=pl.col("discounts").replace_strict({k: v[0] for k, v in billing.discounts.items()},
                                               return_dtype=pl.Int64),
        den=pl.col("discounts").replace_strict({k: v[1] for k, v in billing.discounts.items()},
                                               return_dtype=pl.Int64)))
    _frame(con, "bill_plan_taxes", pl.DataFrame(
        [(plan, name, num, den) for plan, taxes in billing.taxes.items()
         for name, num, den in taxes],
        schema={"plan_id": pl.String, "tax": pl.String, "num": pl.Int64, "den": pl.Int64},
        orient="row"))
    step = 10 ** (9 - billing.minor_units)  # nanos per minor unit
    con.execute("SET TimeZone = 'UTC'")
    bills = con.sql(f"""
        WITH events AS (
            SELECT coalesce(c.customer_id, r.subscriber_id) AS customer_id,
                   r.usage_period_start AS period_start, r.subscriber_id, r.plan_id,
                   r.service, r.destination_name,
                   CAST(r.amount * 1000000000 AS HUGEINT) AS nanos
            FROM {rated} r LEFT JOIN bill_customers c USING (subscriber_id)
            WHERE r.status = 'rated'
        ),
        lines AS (
            SELECT customer_id, period_start, plan_id,
                   (2 * sum(nanos) + {step}) // {2 * step} AS minor
            FROM events
            GROUP BY customer_id, period_start, subscriber_id, plan_id, service,
                     destination_name
        ),
        discounted AS (
            SELECT l.*, CASE WHEN l.minor > 0 AND d.num IS NOT NULL
                             THEN (2 * l.minor * d.num + d.den) // (2 * d.den)
                             ELSE 0 END AS off
            FROM lines l LEFT JOIN bill_discounts d USING (customer_id)
        ),
        taxes AS (
            SELECT customer_id, period_start, t.tax,
                   (2 * sum((minor - off) * t.num) + any_value(t.den))
                       // (2 * any_value(t.den)) AS minor
            FROM discounted JOIN bill_plan_taxes t USING (plan_id)
            GROUP BY customer_id, period_start, t.tax, t.num, t.den
        ),
        bills AS (
            SELECT customer_id, period_start, sum(minor) AS subtotal, sum(off) AS discount
            FROM discounted GROUP BY customer_id, period_start
        )
        SELECT b.customer_id, b.period_start, b.subtotal, b.discount,
               coalesce(t.tax, 0) AS tax,
               b.subtotal - b.discount + coalesce(t.tax, 0) AS total
        FROM bills b LEFT JOIN (SELECT customer_id, period_start, sum(minor) AS tax
                                FROM taxes GROUP BY ALL) t
            USING (customer_id, period_start)
        ORDER BY customer_id, period_start
    """).pl()
    if (bills["subtotal"] < 0).any():
        raise UnsupportedTariff("bills: negative lines (credits) are not implemented")
    minor = pl.lit(Decimal(1).scaleb(-billing.minor_units), pl.Decimal(38, 9))
    money = [(pl.col(c).cast(pl.Decimal(38, 0)) * minor).cast(pl.Decimal(38, 9))
             for c in ("subtotal", "discount", "tax", "total")]
    return bills.select("customer_id", "period_start", *money).cast(BILL_SCHEMA)
