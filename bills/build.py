"""Building bills.duckdb from rated Parquet: bill lines, taxes, bills, and the row accounting.

The database is written under a temporary name and renamed, so a killed run leaves the
previous database intact and a re-run of the same inputs produces the same tables.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import polars as pl

from rules import Accounts, Catalog
from rules.accounts import SUBSCRIPTION_SCHEMA
from rules.money import (
    arrow_to_nanos,
    minor_units,
    nanos_to_arrow,
    round_decimal,
    round_nanos,
)

from .credits import carry_credits
from .discounts import apply, in_force
from .recurring import recurring_items
from .schema import BILL_KEYS, LINE_KEYS, LINE_SCHEMA
from .taxes import applicable, compute
from .usage_charges import (
    bundle_balances,
    cycle_priced,
    cycle_priced_lines,
    daily_rounding_lines,
    period_limit_lines,
)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    batch: str
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


def _recurring_lines(catalog: Catalog, accounts: Accounts | None, usage: pl.DataFrame,
                     as_of: datetime) -> pl.DataFrame:
    seen = usage.select("customer_id", "subscriber_id", "plan_id", "period_start",
                        "period_end").unique().rows()
    plans = {p.id: p for p in catalog.model.plans}
    rows = []
    for item in recurring_items(catalog, accounts, seen, as_of):
        zone = ZoneInfo(item.zone)
        rows.append({
            "customer_id": item.customer_id, "subscriber_id": item.subscriber_id,
            "plan_id": item.plan_id, "period_start": item.period.start,
            "period_end": item.period.end,
            "cycle_start": item.period.start.astimezone(zone).date(),
            "cycle_end": item.period.end.astimezone(zone).date(),
            "currency": catalog.plan_currency(plans[item.plan_id]), "service": "recurring",
            "destination_name": item.charge.name, "events": 0, "quantity": 0,
            "billed_quantity": 0,
            "amount_exact": round_decimal(item.amount, 9), "line_type": item.line_type,
        })
    return pl.DataFrame(rows, schema=LINE_SCHEMA | {"line_type": pl.String})


def _price_bills(lines: pl.DataFrame, catalog: Catalog, accounts: Accounts | None):
    """Discounts and taxes per bill (customer, period, currency): (lines, bills, taxes,
    discounts). Lines keep their rounded amount; discounts and taxes are rounded as the
    catalog declares, and a bill's total is exactly lines - discounts + exclusive taxes."""
    plans = {p.id: p for p in catalog.model.plans}
    rounding = catalog.model.rounding
    line_discount, line_tax = [], []
    bills, taxes, discounts = [], [], []
    taxes_of: dict[tuple, list] = {}  # the same few combinations for every bill

    def taxes_for(plan_id: str, service: str, customer) -> list:
        jurisdiction = customer and customer.tax_jurisdiction
        exempt = tuple(customer.tax_exempt) if customer else ()
        key = (plan_id, service, jurisdiction, exempt)
        if key not in taxes_of:
            taxes_of[key] = applicable(plans[plan_id].taxes, catalog.model.taxes,
                                       jurisdiction, list(exempt), service)
        return taxes_of[key]

    # lines are sorted by bill, so each bill's lines are consecutive
    for key, group in itertools.groupby(lines.iter_rows(named=True),
                                        key=lambda r: tuple(r[k] for k in BILL_KEYS)):
        bill = dict(zip(BILL_KEYS, key, strict=True))
        customer = accounts.customer(bill["customer_id"]) if accounts else None
        places = minor_units(bill["currency"])
        rows = list(group)
        plan0 = plans[rows[0]["plan_id"]]
        zone = (customer and customer.timezone) or catalog.plan_zone(plan0)
        work = [{"taxable": r["amount"], "service": r["service"], "plan_id": r["plan_id"],
                 "destination_name": r["destination_name"],
                 "taxes": taxes_for(r["plan_id"], r["service"], customer)}
                for r in rows]
        held = in_force(catalog, accounts, bill["customer_id"], zone, bill["period_start"],
                        bill["period_end"])
        per_line = [Decimal(0)] * len(rows)
        for name, i, amount in apply(work, held, places, rounding.line):
            per_line[i] += amount
            discounts.append({**bill, "discount_id": name, "line_no": i, "amount": amount})
        bill_taxes = compute(work, places, rounding.tax, rounding.tax_scope)
        taxes += [{**bill, **entry} for entry in bill_taxes]
        line_discount += per_line
        line_tax += [w["tax"] if rounding.tax_scope == "line" else Decimal(0) for w in work]
        subtotal = sum((r["amount"] for r in rows), Decimal(0))
        tax = sum((e["tax"] for e in bill_taxes if not e["inclusive"]), Decimal(0))
        discount = sum(per_line, Decimal(0))
        bills.append({**bill, "lines": len(rows),
                      "events": sum(r["events"] for r in rows), "subtotal": subtotal,
                      "discount": discount, "tax": tax, "total": subtotal - discount + tax})
    money = pl.Decimal(38, 9)
    lines = lines.with_columns(discount=pl.Series(line_discount, dtype=money),
                               tax=pl.Series(line_tax, dtype=money))
    bill_schema = {**{k: LINE_SCHEMA[k] for k in BILL_KEYS}, "lines": pl.Int64,
                   "events": pl.Int64, "subtotal": money, "discount": money, "tax": money,
                   "total": money}
    tax_schema = {**{k: LINE_SCHEMA[k] for k in BILL_KEYS}, "tax_name": pl.String,
                  "tax_rate": money, "base": money, "tax": money, "inclusive": pl.Boolean}
    discount_schema = {**{k: LINE_SCHEMA[k] for k in BILL_KEYS}, "discount_id": pl.String,
                       "line_no": pl.Int64, "amount": money}
    return (lines, pl.DataFrame(bills, schema=bill_schema),
            pl.DataFrame(taxes, schema=tax_schema),
            pl.DataFrame(discounts, schema=discount_schema))


def build_bills(root: str | Path, rated: list[str], quarantine: list[str], catalog: Catalog,
                runs: list[RunRecord], *, accounts: Accounts | None = None,
                as_of: datetime | None = None) -> dict:
    """Write ``root/bills.duckdb`` from rated Parquet files named relative to ``root``;
    returns counts for the run summary. The views name their files relative to the
    database's folder, so the folder can be moved or copied whole; `ratecycle sql` resolves
    them there (with DuckDB's ``file_search_path``)."""
    root = Path(root)
    as_of = as_of or datetime.now(UTC)
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
        keys = ", ".join(LINE_KEYS)
        usage = con.sql(f"""
            SELECT {keys}, count(*) AS events, sum(quantity)::HUGEINT AS quantity,
                   sum(billed_quantity)::HUGEINT AS billed_quantity,
                   sum(amount)::DECIMAL(38, 9) AS amount_exact,
                   CASE WHEN late THEN 'late_usage' ELSE 'usage' END AS line_type
            FROM rated_usage WHERE status = 'rated'
            GROUP BY ALL ORDER BY ALL
        """).pl() if rated else pl.DataFrame(schema=LINE_SCHEMA | {"line_type": pl.String})
        usage = usage.cast(LINE_SCHEMA | {"line_type": pl.String})
        lines = pl.concat([
            usage.join(cycle_priced(catalog), on=["plan_id", "service"], how="anti"),
            cycle_priced_lines(con, catalog, rated),
            daily_rounding_lines(con, catalog, accounts, rated)])
        lines = pl.concat([lines, period_limit_lines(lines, catalog),
                           _recurring_lines(catalog, accounts, usage, as_of)])
        lines = lines.sort(*BILL_KEYS, "line_type", "service", "destination_name",
                           "subscriber_id", "plan_id", nulls_last=True)
        lines = _round_lines(lines, catalog).with_columns(
            line_no=pl.int_range(pl.len()).over(BILL_KEYS).cast(pl.Int64))
        lines, bills, taxes, discounts = _price_bills(lines, catalog, accounts)
        lines, bills, balances = carry_credits(lines, bills)
        for name, frame in (("bill_lines", lines), ("bills", bills),
                            ("bill_taxes", taxes), ("bill_discounts", discounts),
                            ("balances", balances),
                            ("bundle_balances", bundle_balances(con, catalog, rated)),
                            ("plans", _plans_table(catalog)),
                            ("customers", _customers_table(accounts)),
                            ("subscriptions", _subscriptions_table(accounts))):
            con.register("frame", frame.to_arrow())
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
        rows = []
        for run in runs:
            acc = run.accounting
            rows += [(run.batch, "read", None, acc["read"]),
                     (run.batch, "rated", None, acc["rated"])]
            rows += [(run.batch, "unrated", r, n) for r, n in sorted(acc["unrated"].items())]
            rows += [(run.batch, "quarantined", r, n)
                     for r, n in sorted(acc["quarantined"].items())]
        con.execute("""CREATE TABLE row_accounting (batch VARCHAR, outcome VARCHAR,
                       reason VARCHAR, rows BIGINT)""")
        if rows:
            con.executemany("INSERT INTO row_accounting VALUES (?, ?, ?, ?)", rows)
        con.execute("""CREATE TABLE runs (batch VARCHAR, run_id VARCHAR, as_of VARCHAR,
                       catalog_digest VARCHAR, inputs JSON, accounting JSON)""")
        for run in runs:
            con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)", [
                run.batch, run.run_id, run.as_of, run.catalog_digest,
                json.dumps(run.inputs, sort_keys=True),
                json.dumps(run.accounting, sort_keys=True)])
        revenue = con.execute("""
            SELECT service, currency, sum(amount) FROM bill_lines GROUP BY ALL ORDER BY ALL
        """).fetchall()
        totals = con.execute("SELECT count(*) FROM bills").fetchone()
        billed = con.execute("""SELECT currency, sum(total) FROM bills GROUP BY ALL
                                ORDER BY ALL""").fetchall()
        bundles = con.execute("""
            SELECT bundle, sum(used), sum(allowance), count(*) FILTER (WHERE "left" = 0)
            FROM bundle_balances GROUP BY ALL ORDER BY ALL""").fetchall()
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, db_path)
    return {
        "bills": totals[0],
        "billed_total": {cur: _money_text(amount, cur) for cur, amount in billed},
        "revenue_by_service": {f"{svc} ({cur})": _money_text(amount, cur)
                               for svc, cur, amount in revenue},
        "bundles": {name: (int(used), int(allowance), empty)
                    for name, used, allowance, empty in bundles},
    }


def _customers_table(accounts: Accounts | None) -> pl.DataFrame:
    """The accounts file's customers, as the bills were built with them."""
    customers = accounts.customers.values() if accounts else []
    return pl.DataFrame([{
        "customer_id": c.id, "timezone": c.timezone, "currency": c.currency,
        "tax_jurisdiction": c.tax_jurisdiction, "tax_exempt": c.tax_exempt,
        "cycle": c.cycle.model_dump_json(),
        "discounts": json.dumps([d.model_dump(mode="json", by_alias=True)
                                 for d in c.discounts]),
    } for c in customers], schema={
        "customer_id": pl.String, "timezone": pl.String, "currency": pl.String,
        "tax_jurisdiction": pl.String, "tax_exempt": pl.List(pl.String), "cycle": pl.String,
        "discounts": pl.String})


def _subscriptions_table(accounts: Accounts | None) -> pl.DataFrame:
    if accounts is None:
        return pl.DataFrame(schema=SUBSCRIPTION_SCHEMA)
    return accounts.subscriptions


def _plans_table(catalog: Catalog) -> pl.DataFrame:
    plans = catalog.model.plans
    return pl.DataFrame({
        "plan_id": [p.id for p in plans],
        "is_default": [p.default for p in plans],
        "timezone": [catalog.plan_zone(p) for p in plans],
        "currency": [catalog.plan_currency(p) for p in plans],
        "taxes": [json.dumps([t.model_dump() for t in p.taxes]) for p in plans],
        "recurring": [json.dumps([r.model_dump() for r in p.recurring]) for p in plans],
    })


def _money_text(amount: Decimal, currency: str) -> str:
    """An amount already rounded to the currency's minor unit, printed with its places."""
    return str(round_decimal(amount, minor_units(currency)))
