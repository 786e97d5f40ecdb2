"""Building bills.duckdb from rated Parquet: bill lines, taxes, bills, and the row accounting.

The database is written under a temporary name and renamed, so a killed run leaves the
previous database intact and a re-run of the same inputs produces the same tables.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from rules import Catalog
from rules.money import (
    arrow_to_nanos,
    minor_units,
    nanos_to_arrow,
    round_decimal,
    round_nanos,
    to_nanos,
)

from .schema import BILL_LINE_KEYS


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    as_of: str
    catalog_digest: str
    inputs: dict
    accounting: dict  # {"read": n, "rated": n, "unrated": {...}, "quarantined": {...}}


def _sql_path(path: Path) -> str:
    return str(path.resolve()).replace("'", "''")


def _round_lines(lines: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    """Round each line's exact amount once, to its currency's minor unit (catalog method)."""
    exact = arrow_to_nanos(lines["amount_exact"].to_arrow())
    step = np.array([10 ** (9 - minor_units(c)) for c in lines["currency"].to_list()],
                    dtype=np.int64)
    rounded = round_nanos(exact, step, catalog.model.rounding.line) * step
    return lines.with_columns(amount=pl.from_arrow(nanos_to_arrow(rounded)))


def _bills_and_taxes(lines: pl.DataFrame, catalog: Catalog) -> tuple[pl.DataFrame, pl.DataFrame]:
    keys = ["subscriber_id", "plan_id", "cycle_start", "cycle_end", "currency"]
    bills = lines.group_by(keys).agg(
        lines=pl.len().cast(pl.Int64), events=pl.col("events").sum(),
        subtotal=pl.col("amount").sum()
    ).sort(keys)
    tax_rows = {k: [] for k in (*keys, "tax_name", "tax_rate", "base", "tax")}
    totals = []
    method = catalog.model.rounding.tax
    taxes_of = {p.id: p.taxes for p in catalog.model.plans}
    for row in bills.iter_rows(named=True):
        places = minor_units(row["currency"])
        tax_total = Decimal(0)
        for tax in taxes_of.get(row["plan_id"], []):
            amount = round_decimal(row["subtotal"] * Decimal(tax.rate), places, method)
            tax_total += amount
            for k in keys:
                tax_rows[k].append(row[k])
            tax_rows["tax_name"].append(tax.name)
            tax_rows["tax_rate"].append(to_nanos(tax.rate))
            tax_rows["base"].append(to_nanos(row["subtotal"]))
            tax_rows["tax"].append(to_nanos(amount))
        totals.append((to_nanos(tax_total), to_nanos(row["subtotal"] + tax_total)))
    tax_nanos = np.array([t for t, _ in totals], dtype=np.int64)
    total_nanos = np.array([t for _, t in totals], dtype=np.int64)
    bills = bills.with_columns(
        tax=pl.from_arrow(nanos_to_arrow(tax_nanos)),
        total=pl.from_arrow(nanos_to_arrow(total_nanos)),
    )
    taxes = pl.DataFrame({k: v for k, v in tax_rows.items() if k not in
                          ("tax_rate", "base", "tax")}, schema={
        "subscriber_id": pl.String, "plan_id": pl.String, "cycle_start": pl.Date,
        "cycle_end": pl.Date, "currency": pl.String, "tax_name": pl.String})
    for k in ("tax_rate", "base", "tax"):
        taxes = taxes.with_columns(pl.from_arrow(nanos_to_arrow(
            np.array(tax_rows[k], dtype=np.int64))).alias(k))
    return bills, taxes


def build_bills(root: str | Path, rated: list[str], quarantine: list[str],
                catalog: Catalog, run: RunRecord) -> dict:
    """Write ``root/bills.duckdb`` from rated Parquet files named relative to ``root``;
    returns counts for the run summary. The views name their files relative to the
    database's folder, so the folder can be moved or copied whole; `ratecycle sql` resolves
    them there (with DuckDB's ``file_search_path``)."""
    root = Path(root)
    db_path = root / "bills.duckdb"
    for stale in root.glob(".bills.duckdb.*.tmp"):
        stale.unlink()  # left by a run that was killed
    tmp = root / f".bills.duckdb.{os.getpid()}.tmp"
    con = duckdb.connect(str(tmp))
    try:
        con.execute(f"SET file_search_path = '{_sql_path(root)}'")
        for view, files in (("rated_usage", rated), ("quarantine", quarantine)):
            names = ", ".join(f"'{name}'" for name in files)
            source = (f"read_parquet([{names}])" if files else
                      "(SELECT NULL::VARCHAR AS event_id WHERE false)")
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM {source}")
        keys = ", ".join(BILL_LINE_KEYS)
        lines = con.sql(f"""
            SELECT {keys}, count(*) AS events, sum(quantity)::HUGEINT AS quantity,
                   sum(billed_quantity)::HUGEINT AS billed_quantity,
                   sum(amount)::DECIMAL(38, 9) AS amount_exact
            FROM rated_usage WHERE status = 'rated'
            GROUP BY ALL ORDER BY {keys}
        """).pl() if rated else pl.DataFrame()
        if lines.is_empty():
            lines = pl.DataFrame(schema={
                "subscriber_id": pl.String, "plan_id": pl.String, "cycle_start": pl.Date,
                "cycle_end": pl.Date, "service": pl.String, "destination_name": pl.String,
                "currency": pl.String, "events": pl.Int64, "quantity": pl.Int64,
                "billed_quantity": pl.Int64, "amount_exact": pl.Decimal(38, 9)})
        lines = _round_lines(lines, catalog).with_columns(
            line_type=pl.lit("usage"), run_id=pl.lit(run.run_id))
        bills, taxes = _bills_and_taxes(lines, catalog)
        bills = bills.with_columns(run_id=pl.lit(run.run_id))

        con.register("lines_df", lines.to_arrow())
        con.register("bills_df", bills.to_arrow())
        con.register("taxes_df", taxes.to_arrow())
        con.execute("CREATE TABLE bill_lines AS SELECT * FROM lines_df")
        con.execute("CREATE TABLE bills AS SELECT * FROM bills_df")
        con.execute("CREATE TABLE bill_taxes AS SELECT * FROM taxes_df")
        plans = pl.DataFrame({
            "plan_id": [p.id for p in catalog.model.plans],
            "is_default": [p.default for p in catalog.model.plans],
            "timezone": [catalog.plan_zone(p) for p in catalog.model.plans],
            "currency": [catalog.currency] * len(catalog.model.plans),
            "taxes": [json.dumps([t.model_dump() for t in p.taxes]) for p in catalog.model.plans],
        })
        con.register("plans_df", plans.to_arrow())
        con.execute("CREATE TABLE plans AS SELECT * FROM plans_df")
        acc = run.accounting
        rows = [("read", None, acc["read"]), ("rated", None, acc["rated"])]
        rows += [("unrated", r, n) for r, n in sorted(acc["unrated"].items())]
        rows += [("quarantined", r, n) for r, n in sorted(acc["quarantined"].items())]
        con.execute("CREATE TABLE row_accounting (outcome VARCHAR, reason VARCHAR, rows BIGINT)")
        con.executemany("INSERT INTO row_accounting VALUES (?, ?, ?)", rows)
        con.execute("""CREATE TABLE runs (run_id VARCHAR, as_of VARCHAR, catalog_digest VARCHAR,
                       inputs JSON, accounting JSON)""")
        con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?)", [
            run.run_id, run.as_of, run.catalog_digest, json.dumps(run.inputs, sort_keys=True),
            json.dumps(acc, sort_keys=True)])
        for name in ("lines_df", "bills_df", "taxes_df", "plans_df"):
            con.unregister(name)
        revenue = con.execute("""
            SELECT service, currency, sum(amount) FROM bill_lines GROUP BY ALL ORDER BY ALL
        """).fetchall()
        totals = con.execute("SELECT count(*) FROM bills").fetchone()
        billed = con.execute("""SELECT currency, sum(total) FROM bills GROUP BY ALL
                                ORDER BY ALL""").fetchall()
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, db_path)
    return {
        "bills": totals[0],
        "billed_total": {cur: _money_text(amount, cur) for cur, amount in billed},
        "revenue_by_service": {f"{svc} ({cur})": _money_text(amount, cur)
                               for svc, cur, amount in revenue},
    }


def _money_text(amount: Decimal, currency: str) -> str:
    """An amount already rounded to the currency's minor unit, printed with its places."""
    return str(round_decimal(amount, minor_units(currency)))
