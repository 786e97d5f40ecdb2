"""Properties of recurring fees across plan changes, over random chains of changes.

A subscriber takes random plans one after another (each change at a random instant, with
the `prorate` or `restart` policy), billed in advance or in arrears, with random taxes
and discounts. `ratecycle run` must write bills where

- no bill total is negative: credits beyond the charges are carried (`credit_carried`),
  and taken back by later bills (`credit_applied`) up to their totals;
- a bill's total is exactly its lines less their discounts plus its exclusive taxes, and
  its subtotal the sum of its lines;
- the `balances` table holds what was carried less what was applied;
- only `recurring_credit` and `credit_applied` lines are negative.
"""

from __future__ import annotations

import csv
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ratecycle.cli import main

FIRST = datetime(2025, 1, 1, tzinfo=UTC)
AS_OF = FIRST + timedelta(days=120)


def sql_rows(db: Path, query: str) -> list[dict]:
    out = db.parent.parent / "result.csv"
    assert main(["sql", "--db", str(db), query, "--format", "csv", "--output", str(out)]) == 0
    with out.open(newline="") as handle:
        return list(csv.DictReader(handle))


@st.composite
def chains(draw) -> dict:
    prices = draw(st.lists(st.integers(0, 500).map(lambda n: f"{n}.00"), min_size=2,
                           max_size=4))
    days = sorted(draw(st.lists(st.integers(1, 110), min_size=1, max_size=4, unique=True)))
    return {
        "prices": prices,
        "taken": [draw(st.integers(0, len(prices) - 1)) for _ in range(len(days) + 1)],
        "days": days,
        "policies": [draw(st.sampled_from(["prorate", "restart"])) for _ in days],
        "billed": draw(st.sampled_from(["advance", "arrears"])),
        "per": draw(st.sampled_from(["month", "period"])),
        "vat": draw(st.sampled_from([None, "0.20"])),
        "discount": draw(st.sampled_from([None, "0.50", "fixed"])),
        "usage_price": draw(st.sampled_from(["0", "1.00"])),
    }


def run(folder: Path, ch: dict) -> Path:
    plans = []
    for i, price in enumerate(ch["prices"]):
        plan = {"id": f"p{i}", "recurring": [{"name": "fee", "price": price,
                                              "per": ch["per"], "billed": ch["billed"]}],
                "charges": [{"service": "api", "rate": ch["usage_price"], "per": "unit"}]}
        if ch["vat"]:
            plan["taxes"] = [{"name": "VAT", "rate": ch["vat"]}]
        plans.append(plan)
    catalog = {"catalog": 1, "currency": "EUR", "plans": plans, "discounts": {
        "half": {"kind": "percentage", "value": "0.50"},
        "fixed": {"kind": "fixed", "value": "40"}}}
    bounds = [FIRST + timedelta(days=d, hours=5) for d in ch["days"]]
    subscriptions = []
    for i, plan in enumerate(ch["taken"]):
        sub = {"subscriber": "s", "customer": "c", "plan": f"p{plan}",
               "start": (bounds[i - 1] if i else FIRST).isoformat()}
        if i < len(bounds):
            sub["end"] = bounds[i].isoformat()
        if i:
            sub["change"] = ch["policies"][i - 1]
        subscriptions.append(sub)
    customer = {"id": "c", "timezone": "Europe/Copenhagen",
                "cycle": {"interval": "monthly", "anchor": "calendar"}}
    if ch["discount"]:
        customer["discounts"] = ["half" if ch["discount"] == "0.50" else "fixed"]
    (folder / "catalog.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    (folder / "accounts.yaml").write_text(yaml.safe_dump(
        {"customers": [customer], "subscriptions": subscriptions}, sort_keys=False))
    (folder / "usage.csv").write_text(
        "event_id,subscriber_id,service,started_at,quantity,destination\n"
        "u1,s,api,2025-01-20T10:00:00+00:00,3,meter\n")
    assert main(["run", "--format", "csv", str(folder / "usage.csv"), "--column-map",
                 str(_column_map(folder)), "--catalog", str(folder / "catalog.yaml"),
                 "--accounts", str(folder / "accounts.yaml"), "--out", str(folder / "out"),
                 "--as-of", AS_OF.isoformat()]) == 0
    return folder / "out" / "bills.duckdb"


def _column_map(folder: Path) -> Path:
    path = folder / "map.yaml"
    path.write_text(yaml.safe_dump({
        "has_header": True,
        "columns": {"event_id": "event_id", "subscriber_id": "subscriber_id",
                    "started_at": "started_at", "quantity": "quantity",
                    "destination": "destination"},
        "service": {"column": "service", "values": {"api": "api"}}}))
    return path


def check(db: Path) -> None:
    key = "epoch_us(period_start) AS p"
    bills = sql_rows(db, f"SELECT {key}, subtotal, tax, total FROM bills ORDER BY p")
    lines = sql_rows(db, f"SELECT {key}, line_type, amount, discount FROM bill_lines")
    taxes = sql_rows(db, f"SELECT {key}, tax, inclusive FROM bill_taxes")
    carried = applied = Decimal(0)
    for bill in bills:
        mine = [ln for ln in lines if ln["p"] == bill["p"]]
        total = Decimal(bill["total"])
        assert total >= 0, bill
        exclusive = sum((Decimal(t["tax"]) for t in taxes
                         if t["p"] == bill["p"] and t["inclusive"] == "false"), Decimal(0))
        assert Decimal(bill["tax"]) == exclusive
        assert total == sum(Decimal(ln["amount"]) - Decimal(ln["discount"])
                            for ln in mine) + exclusive, (bill, mine)
        assert Decimal(bill["subtotal"]) == sum(Decimal(ln["amount"]) for ln in mine)
        for ln in mine:
            if Decimal(ln["amount"]) < 0:
                assert ln["line_type"] in ("recurring_credit", "credit_applied"), ln
            if ln["line_type"] == "credit_carried":
                carried += Decimal(ln["amount"])
            if ln["line_type"] == "credit_applied":
                applied -= Decimal(ln["amount"])
    balances = sql_rows(db, "SELECT carried, applied, balance FROM balances")
    if carried:
        (row,) = balances
        assert (Decimal(row["carried"]), Decimal(row["applied"]), Decimal(row["balance"])) == (
            carried, applied, carried - applied)
    else:
        assert balances == [] and applied == 0


@settings(max_examples=25, deadline=None, database=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(ch=chains())
def test_plan_changes_never_make_a_bill_negative(ch):
    with tempfile.TemporaryDirectory(prefix="plan-changes-") as tmp:
        check(run(Path(tmp), ch))


def test_pinned_downgrade_with_a_fixed_discount(tmp_path):
    """A cheap plan replaces a dear one under `restart`: the restart bill's credit exceeds
    its charges, and a fixed discount on the first bill's fee does not change that."""
    ch = {"prices": ["300.00", "10.00"], "taken": [0, 1], "days": [5],
          "policies": ["restart"], "billed": "advance", "per": "month", "vat": "0.20",
          "discount": "fixed", "usage_price": "1.00"}
    db = run(tmp_path, ch)
    check(db)
    assert sql_rows(db, "SELECT count(*) AS n FROM bill_lines "
                        "WHERE line_type = 'credit_carried'") == [{"n": "1"}]
