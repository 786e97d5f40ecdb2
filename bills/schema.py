"""Tables and views of bills.duckdb (DESIGN.md, "Bills"). Amounts are DECIMAL: exact
sums at 9 places, and the billed amounts rounded to the currency's minor unit."""

TABLES = {
    "runs": "one row per nightly run: run_id, catalog digest, as-of instant, inputs",
    "row_accounting": "read = rated + unrated + quarantined, by stage and reason",
    "plans": "the catalog's plans: zone, currency, taxes",
    "bill_lines": "usage per subscriber, cycle, service and destination, rounded once",
    "bill_taxes": "each tax of each bill, on the bill's subtotal",
    "bills": "per subscriber per cycle: subtotal, tax, total (= lines + taxes exactly)",
}
VIEWS = {
    "rated_usage": "the rated Parquet: one row per event with its explanation",
    "quarantine": "rows that could not be used, with their reason",
}

BILL_LINE_KEYS = ("subscriber_id", "plan_id", "cycle_start", "cycle_end", "service",
                  "destination_name", "currency")
