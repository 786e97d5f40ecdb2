"""Tables and views of bills.duckdb (DESIGN.md, "Bills"). Amounts are DECIMAL: exact
sums at 9 places, and the billed amounts rounded to the currency's minor unit."""

import polars as pl

TABLES = {
    "runs": "one row per batch of input files: its latest run id, catalog digest, as-of",
    "row_accounting": "per batch: read = rated + unrated + quarantined, by reason",
    "plans": "the catalog's plans: zone, currency, taxes",
    "customers": "the accounts' customers: zone, currency, tax jurisdiction, cycle, discounts",
    "subscriptions": "who holds which plan from when to when (trial end, change policy)",
    "balances": "per customer and currency: credit carried from bills whose credits "
                "exceeded their charges, what later bills applied, what is left",
    "bundle_balances": "per subscriber, plan, period and bundle: allowance, used, left",
    "bill_lines": "usage per subscriber, service and destination, and recurring fees (one "
                  "line per calendar month of a monthly fee billed for a longer period; "
                  "fee_start/fee_end: the time a recurring line charges), per bill; each "
                  "rounded once, with its discount and (line scope) tax",
    "bill_discounts": "each discount applied to a line",
    "bill_taxes": "each tax of each bill: base and amount",
    "bills": "per customer per billing period: subtotal, discount, tax, total (= lines - "
             "discounts + exclusive taxes, exactly); closes_at, the period's end plus the "
             "catalog's collection window (usage ingested later is billed late; null: no "
             "window, the period stays open)",
}
VIEWS = {
    "rated_usage": "the rated Parquet: one row per event with its explanation",
    "quarantine": "rows that could not be used, with their reason",
}


# A bill is one customer's billing period in one currency.
BILL_KEYS = ("customer_id", "period_start", "period_end", "cycle_start", "cycle_end",
             "currency")
# A usage line: per subscriber and plan, service and destination within a bill.
LINE_KEYS = (*BILL_KEYS, "subscriber_id", "plan_id", "service", "destination_name")
# The order of a bill's lines (their line_no), nulls last. Usage lines are unique on its
# first columns (USAGE_ORDER), so the database can hand them over in this order.
USAGE_ORDER = (*BILL_KEYS, "line_type", "service", "destination_name", "subscriber_id",
               "plan_id")
LINE_ORDER = (*USAGE_ORDER, "fee", "fee_start")

_INSTANT = pl.Datetime("us", "UTC")
LINE_SCHEMA = {
    "customer_id": pl.String, "period_start": _INSTANT, "period_end": _INSTANT,
    "cycle_start": pl.Date, "cycle_end": pl.Date, "currency": pl.String,
    "subscriber_id": pl.String, "plan_id": pl.String, "service": pl.String,
    "destination_name": pl.String, "events": pl.Int64, "quantity": pl.Int64,
    "billed_quantity": pl.Int64, "amount_exact": pl.Decimal(38, 9),
}
# Recurring lines only (null on the others): the part of time the line charges or
# credits, [fee_start, fee_end) in UTC; a fee split by month has one line per month.
FEE_SCHEMA = {"fee_start": _INSTANT, "fee_end": _INSTANT}
USAGE_LINE_SCHEMA = LINE_SCHEMA | {"line_type": pl.String}
# ``fee`` numbers the parts of one fee, rounded together; it is dropped once they are
RECURRING_LINE_SCHEMA = USAGE_LINE_SCHEMA | FEE_SCHEMA | {"fee": pl.Int64}
