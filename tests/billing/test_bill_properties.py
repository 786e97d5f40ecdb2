"""Properties of the bills that the nightly job writes, over random small inputs.

For random usage (several named services at random flat rates), customers in several
zones and currencies (EUR 2, JPY 0, BHD 3 minor units), recurring fees with proration,
taxes (plan and jurisdiction taxes, exclusive, inclusive, compound, exemptions), discounts
(percentage and fixed, limited to services, in stacking order) and every declared rounding
(line and tax method, tax scope), `ratecycle run` must write bills where

- every amount on a bill is a whole number of the currency's minor unit;
- a bill's total is exactly the sum of its lines minus their discounts plus its exclusive
  taxes; its subtotal, discount and tax are the sums of what its lines and taxes hold;
- each line is its exact amount rounded once by the declared method;
- a discount never exceeds its line, and no line and no bill is negative.

The examples are few and small: each runs the whole job in process.
"""

from __future__ import annotations

import csv
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ratecycle.cli import main

MINOR = {"EUR": 2, "JPY": 0, "BHD": 3}
ZONES = ["UTC", "Europe/Copenhagen", "America/New_York", "Asia/Tokyo"]
SERVICES = ["calls", "texts", "bytes"]
JURISDICTIONS = ["DK", "US"]
METHODS = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN, "up": ROUND_CEILING,
           "down": ROUND_FLOOR}
FIRST = datetime(2024, 3, 1, tzinfo=UTC)
AS_OF = "2024-06-01T06:00:00Z"
USAGE_SCHEMA = {"event_id": pl.String, "subscriber_id": pl.String, "service": pl.String,
                "started_at": pl.Datetime("us", "UTC"), "quantity": pl.Int64,
                "destination": pl.String}


def decimal_text(max_value: str, places: int):
    """A non-negative decimal written as text with at most ``places`` decimals."""
    return st.decimals(min_value=0, max_value=Decimal(max_value), places=places,
                       allow_nan=False, allow_infinity=False).map(lambda d: f"{d:f}")


def fraction_text(places: int = 4, max_value: str = "0.3"):
    return decimal_text(max_value, places)


taxes = st.lists(
    st.fixed_dictionaries({
        "rate": fraction_text(),
        "inclusive": st.booleans(),
        "compound": st.booleans(),
        "order": st.integers(0, 3),
        "services": st.lists(st.sampled_from(SERVICES), max_size=2, unique=True),
    }),
    max_size=3,
)


@st.composite
def scenarios(draw) -> dict:
    rounding = {"line": draw(st.sampled_from(list(METHODS))),
                "tax": draw(st.sampled_from(list(METHODS))),
                "tax_scope": draw(st.sampled_from(["invoice", "line"]))}
    rates = {s: draw(decimal_text("20", 4)) for s in SERVICES}
    plan_taxes = draw(taxes)
    jurisdiction_taxes = [
        {**t, "jurisdictions": [draw(st.sampled_from(JURISDICTIONS))]} for t in draw(taxes)]
    discounts = draw(st.lists(st.fixed_dictionaries({
        "kind": st.sampled_from(["percentage", "fixed"]),
        "percentage": fraction_text(2, "1"),
        # whole amounts: valid in every currency (a fixed discount finer than the bill's
        # minor unit is its own pinned test below)
        "fixed": st.integers(0, 30).map(str),
        "services": st.lists(st.sampled_from([*SERVICES, "recurring"]), max_size=2,
                             unique=True),
        "order": st.integers(0, 2),
    }), max_size=3))
    recurring = draw(st.one_of(st.none(), st.fixed_dictionaries({
        "price": decimal_text("100", 2),
        "per": st.sampled_from(["month", "period"]),
        "proration": st.sampled_from(["calendar_days", "period_days", "seconds"]),
        "billed": st.sampled_from(["advance", "arrears"]),
    })))
    customers = []
    for i in range(draw(st.integers(1, 3))):
        start = draw(st.one_of(st.none(), st.integers(0, 80)))
        length = draw(st.one_of(st.none(), st.integers(1, 60)))
        customers.append({
            "id": f"c{i}",
            "currency": draw(st.sampled_from(list(MINOR))),
            "timezone": draw(st.sampled_from(ZONES)),
            "jurisdiction": draw(st.sampled_from([None, *JURISDICTIONS])),
            "exempt": draw(st.lists(st.sampled_from(["T0", "T1", "J0"]), max_size=1)),
            "cycle": draw(st.sampled_from(["monthly", "weekly", "anniversary"])),
            "discounts": draw(st.lists(st.integers(0, max(len(discounts) - 1, 0)),
                                       max_size=len(discounts), unique=True)),
            "start_day": start,
            "days": length,  # None: no end
        })
    events = draw(st.lists(st.fixed_dictionaries({
        "customer": st.integers(0, len(customers) - 1),
        "service": st.sampled_from(SERVICES),
        "minute": st.integers(0, 92 * 24 * 60 - 1),
        "quantity": st.integers(1, 500),
    }), max_size=12))
    return {"rounding": rounding, "rates": rates, "plan_taxes": plan_taxes,
            "jurisdiction_taxes": jurisdiction_taxes, "discounts": discounts,
            "recurring": recurring, "customers": customers, "events": events}


def _tax(spec: dict, name: str) -> dict:
    tax = {"name": name, "rate": spec["rate"], "inclusive": spec["inclusive"],
           "compound": spec["compound"], "order": spec["order"]}
    if spec["services"]:
        tax["services"] = spec["services"]
    if spec.get("jurisdictions"):
        tax["jurisdictions"] = spec["jurisdictions"]
    return tax


def write_inputs(folder: Path, sc: dict) -> list[str]:
    """catalog.yaml, accounts.yaml and usage.parquet of a scenario; the `run` arguments."""
    plans = []
    for currency in MINOR:
        plan = {"id": f"plan_{currency}", "currency": currency,
                "taxes": [_tax(t, f"T{i}") for i, t in enumerate(sc["plan_taxes"])],
                "charges": [{"service": s, "rate": r, "per": "unit"}
                            for s, r in sc["rates"].items()]}
        if currency == "EUR":
            plan["default"] = True
        if sc["recurring"]:
            plan["recurring"] = [{"name": "fee", **sc["recurring"]}]
        plans.append(plan)
    discounts = {}
    for i, d in enumerate(sc["discounts"]):
        discounts[f"d{i}"] = {"kind": d["kind"], "value": d[d["kind"]], "order": d["order"]}
        if d["services"]:
            discounts[f"d{i}"]["services"] = d["services"]
    catalog = {"catalog": 1, "currency": "EUR", "rounding": sc["rounding"], "plans": plans,
               "taxes": [_tax(t, f"J{i}") for i, t in enumerate(sc["jurisdiction_taxes"])],
               "discounts": discounts}
    customers, subscriptions = [], []
    for c in sc["customers"]:
        customer = {"id": c["id"], "timezone": c["timezone"], "currency": c["currency"],
                    "tax_exempt": c["exempt"],
                    "discounts": [{"id": f"d{k}", "from": "2024-03-01T00:00:00Z"}
                                  for k in c["discounts"]]}
        if c["jurisdiction"]:
            customer["tax_jurisdiction"] = c["jurisdiction"]
        customer["cycle"] = {
            "monthly": {"interval": "monthly", "anchor": "calendar"},
            "weekly": {"interval": "weekly", "anchor": "calendar"},
            "anniversary": {"interval": "monthly", "anchor": "2024-01-31T15:00"},
        }[c["cycle"]]
        customers.append(customer)
        sub = {"subscriber": c["id"], "customer": c["id"], "plan": f"plan_{c['currency']}"}
        if c["start_day"] is not None:
            start = FIRST + timedelta(days=c["start_day"], hours=7)
            sub["start"] = start.isoformat()
            if c["days"] is not None:
                sub["end"] = (start + timedelta(days=c["days"])).isoformat()
        subscriptions.append(sub)
    events = [{"event_id": f"e{i}", "subscriber_id": sc["customers"][e["customer"]]["id"],
               "service": e["service"], "started_at": FIRST + timedelta(minutes=e["minute"]),
               "quantity": e["quantity"], "destination": "meter"}
              for i, e in enumerate(sc["events"])]
    (folder / "catalog.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    (folder / "accounts.yaml").write_text(yaml.safe_dump(
        {"customers": customers, "subscriptions": subscriptions}, sort_keys=False))
    pl.DataFrame(events, schema=USAGE_SCHEMA).write_parquet(folder / "usage.parquet")
    return ["run", "--format", "parquet", str(folder / "usage.parquet"),
            "--catalog", str(folder / "catalog.yaml"),
            "--accounts", str(folder / "accounts.yaml"), "--out", str(folder / "out"),
            "--as-of", AS_OF]


def sql_rows(db: Path, query: str) -> list[dict]:
    out = db.parent.parent / "result.csv"
    assert main(["sql", "--db", str(db), query, "--format", "csv", "--output", str(out)]) == 0
    with out.open(newline="") as handle:
        return list(csv.DictReader(handle))


BILL = "customer_id || '|' || epoch_us(period_start) || '|' || currency AS bill"


def _money(rows: list[dict], *names: str) -> list[dict]:
    for row in rows:
        for name in names:
            row[name] = Decimal(row[name])
    return rows


def check_bills(db: Path, rounding: dict) -> int:
    """Assert the bill properties on a bills.duckdb; returns the number of bills."""
    bills = _money(sql_rows(db, f"SELECT {BILL}, currency, subtotal, discount, tax, total "
                                "FROM bills"), "subtotal", "discount", "tax", "total")
    lines = _money(sql_rows(db, f"SELECT {BILL}, line_no, amount_exact, amount, discount, tax "
                                "FROM bill_lines"), "amount_exact", "amount", "discount", "tax")
    taxes = _money(sql_rows(db, f"SELECT {BILL}, tax_name, base, tax, inclusive "
                                "FROM bill_taxes"), "base", "tax")
    discounts = _money(sql_rows(db, f"SELECT {BILL}, line_no, amount FROM bill_discounts"),
                       "amount")
    assert len({b["bill"] for b in bills}) == len(bills)
    assert {ln["bill"] for ln in lines} == {b["bill"] for b in bills}
    method = METHODS[rounding["line"]]
    for bill in bills:
        key, places = bill["bill"], MINOR[bill["currency"]]
        unit = Decimal(1).scaleb(-places)
        mine = [ln for ln in lines if ln["bill"] == key]
        exclusive = [t["tax"] for t in taxes if t["bill"] == key and t["inclusive"] == "false"]
        for ln in mine:
            assert ln["amount"] == ln["amount_exact"].quantize(unit, rounding=method), ln
            assert ln["discount"] == ln["discount"].quantize(unit), ln
            assert 0 <= ln["discount"] <= ln["amount"], ln
            assert ln["amount"] >= 0, ln
        for t in (t for t in taxes if t["bill"] == key):
            assert t["tax"] == t["tax"].quantize(unit) and t["tax"] >= 0, t
        for name in ("subtotal", "discount", "tax", "total"):
            assert bill[name] == bill[name].quantize(unit), (name, bill)
        assert bill["total"] == sum(ln["amount"] - ln["discount"] for ln in mine) + sum(
            exclusive, Decimal(0)), bill
        assert bill["subtotal"] == sum((ln["amount"] for ln in mine), Decimal(0)), bill
        assert bill["discount"] == sum((ln["discount"] for ln in mine), Decimal(0)), bill
        assert bill["discount"] == sum((d["amount"] for d in discounts if d["bill"] == key),
                                       Decimal(0)), bill
        assert bill["tax"] == sum(exclusive, Decimal(0)), bill
        if rounding["tax_scope"] == "line":
            assert bill["tax"] == sum((ln["tax"] for ln in mine), Decimal(0)), bill
        assert bill["total"] >= 0, bill
    return len(bills)


# No shrinking: every example runs the whole job (~1 s), and shrinking a failure took
# minutes; the pinned examples below are the minimal forms of the failures seen so far.
@settings(max_examples=20, deadline=None, database=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sc=scenarios())
def test_every_bill_is_its_lines_less_discounts_plus_exclusive_taxes(sc):
    with tempfile.TemporaryDirectory(prefix="bill-props-") as tmp:
        folder = Path(tmp)
        assert main(write_inputs(folder, sc)) == 0
        check_bills(folder / "out" / "bills.duckdb", sc["rounding"])


# --- pinned examples (each a property failure seen while writing the generator) --------------

def _pinned(tmp_path: Path, **changes) -> int:
    base = {
        "rounding": {"line": "half_up", "tax": "half_up", "tax_scope": "invoice"},
        "rates": {"calls": "1.2345", "texts": "0.05", "bytes": "0"},
        "plan_taxes": [{"rate": "0.2", "inclusive": False, "compound": False, "order": 0,
                        "services": []}],
        "jurisdiction_taxes": [], "discounts": [], "recurring": None,
        "customers": [{"id": "c0", "currency": "EUR", "timezone": "UTC", "jurisdiction": None,
                       "exempt": [], "cycle": "monthly", "discounts": [], "start_day": None,
                       "days": None}],
        "events": [{"customer": 0, "service": "calls", "minute": 60, "quantity": 7},
                   {"customer": 0, "service": "texts", "minute": 90, "quantity": 3}],
    }
    sc = {**base, **changes}
    tmp_path.mkdir(parents=True, exist_ok=True)
    assert main(write_inputs(tmp_path, sc)) == 0
    return check_bills(tmp_path / "out" / "bills.duckdb", sc["rounding"])


def test_pinned_plain_bill(tmp_path):
    assert _pinned(tmp_path) == 1


@pytest.mark.parametrize("currency, value", [("JPY", "2.50"), ("EUR", "0.001")])
def test_pinned_fixed_discount_finer_than_the_minor_unit(tmp_path, currency, value):
    """A catalog's fixed discount of 2.50 held by a JPY customer (or 0.001 by an EUR one):
    a yen bill cannot carry half a yen, so the discount and the total must still be whole
    minor units (either the catalog refuses such a value or the bill rounds it)."""
    customer = {"id": "c0", "currency": currency, "timezone": "UTC", "jurisdiction": None,
                "exempt": [], "cycle": "monthly", "discounts": [0], "start_day": None,
                "days": None}
    changes = {"customers": [customer], "discounts": [
        {"kind": "fixed", "percentage": "0", "fixed": value, "services": [], "order": 0}]}
    if main(["catalog", "check", str(_write_only(tmp_path, changes))]) != 0:
        return  # refused up front: fine
    assert _pinned(tmp_path / "run", **changes) == 1


def test_a_percentage_discount_above_100_percent_never_makes_a_bill_negative(tmp_path):
    """`discounts.big: {kind: percentage, value: "1.5"}` is either refused when the catalog
    is loaded (as a tax rate of 1.5 is), naming its path, or never takes a line below 0."""
    customer = {"id": "c0", "currency": "EUR", "timezone": "UTC", "jurisdiction": None,
                "exempt": [], "cycle": "monthly", "discounts": [0], "start_day": None,
                "days": None}
    sc_changes = {"customers": [customer], "discounts": [
        {"kind": "percentage", "percentage": "1.5", "fixed": "0", "services": [],
         "order": 0}]}
    check = main(["catalog", "check", str(_write_only(tmp_path, sc_changes))])
    if check != 0:
        return  # refused up front: fine
    assert _pinned(tmp_path / "run", **sc_changes) == 1


def _write_only(tmp_path: Path, changes: dict) -> Path:
    folder = tmp_path / "check"
    folder.mkdir()
    base_customer = changes["customers"]
    write_inputs(folder, {
        "rounding": {"line": "half_up", "tax": "half_up", "tax_scope": "invoice"},
        "rates": {s: "1" for s in SERVICES}, "plan_taxes": [], "jurisdiction_taxes": [],
        "recurring": None, "events": [], "customers": base_customer,
        "discounts": changes["discounts"]})
    return folder / "catalog.yaml"
