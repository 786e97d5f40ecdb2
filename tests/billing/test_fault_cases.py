"""Billing faults B17, B19, B23, B25, B27, B29, B31, B32, B34, B35, B37, B40 and B42 of
../shared/cases/billing_fault_cases.json through the nightly job, and the credit balance
that keeps a bill whose credits exceed its charges from turning negative.

Each test writes a catalog, an accounts file and a usage Parquet built from the case's own
`input`, runs `ratecycle run` in process, and reads the bills back from bills.duckdb with
`ratecycle sql --format csv`. It asserts exactly the case's `expected` values that a bill
holds (amounts, quantities, period bounds) and that none of the wrong values the fault
produced (`wrong_*` / `alt_*`, or those the arithmetic quotes) appear on any bill.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
import yaml

from ratecycle.cli import main

CASES_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "cases" / \
    "billing_fault_cases.json"

pytestmark = pytest.mark.skipif(
    not CASES_FILE.is_file(), reason=f"{CASES_FILE} is absent (only in the shared checkout)")

USAGE_SCHEMA = {"event_id": pl.String, "subscriber_id": pl.String, "service": pl.String,
                "started_at": pl.Datetime("us", "UTC"), "quantity": pl.Int64,
                "destination": pl.String}
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def cases() -> dict[str, dict]:
    return {c["id"]: c for c in json.loads(CASES_FILE.read_text())["cases"]}


# --- helpers --------------------------------------------------------------------------------

def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def day_start(text: str) -> str:
    """A case's date 'YYYY-MM-DD' as the instant its UTC day starts."""
    return f"{date.fromisoformat(text).isoformat()}T00:00:00Z"


def day_after(text: str) -> str:
    """The exclusive end instant of an inclusive end date."""
    return f"{(date.fromisoformat(text) + timedelta(days=1)).isoformat()}T00:00:00Z"


def run_job(folder: Path, catalog: dict, *, events: list[dict] = (),
            accounts: dict | None = None, as_of: str, out: Path | None = None) -> Path:
    """`ratecycle run --format parquet` of ``events`` (event_id, subscriber_id, service, at,
    quantity) with the catalog and accounts; returns bills.duckdb. Every folder is new, so
    no in-process cache of an earlier catalog at the same path can apply."""
    folder.mkdir(parents=True, exist_ok=True)
    catalog_path = folder / "catalog.yaml"
    catalog_path.write_text(yaml.safe_dump({"catalog": 1, **catalog}, sort_keys=False))
    usage = folder / "usage.parquet"
    pl.DataFrame([{"event_id": e["event_id"], "subscriber_id": e["subscriber_id"],
                   "service": e["service"], "started_at": instant(e["at"]),
                   "quantity": e["quantity"], "destination": e.get("destination", "meter")}
                  for e in events], schema=USAGE_SCHEMA).write_parquet(usage)
    args = ["run", "--format", "parquet", str(usage), "--catalog", str(catalog_path),
            "--out", str(out or folder / "out"), "--as-of", as_of]
    if accounts is not None:
        accounts_path = folder / "accounts.yaml"
        accounts_path.write_text(yaml.safe_dump(accounts, sort_keys=False))
        args += ["--accounts", str(accounts_path)]
    assert main(args) == 0
    return (out or folder / "out") / "bills.duckdb"


def sql_rows(db: Path, query: str) -> list[dict]:
    """A query through `ratecycle sql --format csv --output`, read back as dicts."""
    out = db.parent.parent / f"result-{abs(hash(query))}.csv"
    assert main(["sql", "--db", str(db), query, "--format", "csv", "--output", str(out)]) == 0
    with out.open(newline="") as handle:
        return list(csv.DictReader(handle))


_MONEY = ("subtotal", "discount", "tax", "total", "amount", "amount_exact", "base",
          "tax_rate")
_BOUNDS = ("period_start", "period_end", "fee_start", "fee_end", "closes_at")


def _typed(row: dict) -> dict:
    out = dict(row)
    for key in _MONEY:
        if key in out and out[key] != "":
            out[key] = Decimal(out[key])
    for key in _BOUNDS:  # empty: null (no fee span on usage lines, no window)
        if key in out:
            out[key] = (datetime.fromtimestamp(int(out[key]) / 1_000_000, UTC)
                        if out[key] != "" else None)
    for key in ("cycle_start", "cycle_end"):
        if key in out:
            out[key] = date.fromisoformat(out[key])
    for key in ("events", "quantity", "billed_quantity", "lines"):
        if key in out and out[key] != "":
            out[key] = int(out[key])
    return out


def bills(db: Path) -> list[dict]:
    """Every bill, oldest period first, with Decimal money and UTC period bounds."""
    return [_typed(r) for r in sql_rows(db, """
        SELECT customer_id, epoch_us(period_start) AS period_start,
               epoch_us(period_end) AS period_end, cycle_start, cycle_end, currency, lines,
               events, subtotal, discount, tax, total, epoch_us(closes_at) AS closes_at
        FROM bills ORDER BY customer_id, period_start""")]


def lines(db: Path) -> list[dict]:
    return [_typed(r) for r in sql_rows(db, """
        SELECT customer_id, epoch_us(period_start) AS period_start,
               epoch_us(period_end) AS period_end, cycle_start, cycle_end, currency,
               subscriber_id, service, line_type, events, quantity, billed_quantity,
               amount_exact, amount, discount, tax, epoch_us(fee_start) AS fee_start,
               epoch_us(fee_end) AS fee_end
        FROM bill_lines ORDER BY customer_id, period_start, line_no""")]


def bill_taxes(db: Path) -> list[dict]:
    return [_typed(r) for r in sql_rows(db, """
        SELECT customer_id, epoch_us(period_start) AS period_start, tax_name, tax_rate, base,
               tax, inclusive
        FROM bill_taxes ORDER BY customer_id, period_start, tax_name""")]


def all_money(db: Path) -> set[Decimal]:
    """Every amount any bill, line, tax or discount holds (to guard against wrong values)."""
    values = set()
    for row in bills(db) + lines(db) + bill_taxes(db):
        values |= {v for k, v in row.items() if k in _MONEY and isinstance(v, Decimal)}
    return values


def flat_plan(plan_id: str, services: dict[str, str], **extra) -> dict:
    """A plan pricing each named metered service at a flat `rate` per unit."""
    return {"id": plan_id, **extra,
            "charges": [{"service": s, "rate": r, "per": "unit"} for s, r in services.items()]}


def half_up(value: Decimal, places: int = 2) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


# --- B17: tax per line vs on the invoice total ----------------------------------------------

def _lines_at_one_rate(folder: Path, nets: list[str], rate: str, *, scope: str,
                       method: str = "half_up") -> Path:
    """One bill whose usage lines are exactly ``nets`` (one service each, one event of one
    unit at that flat rate), all taxed at ``rate``, tax rounded at ``scope`` by ``method``."""
    services = {f"svc{i}": net for i, net in enumerate(nets)}
    catalog = {"currency": "EUR",
               "rounding": {"line": "half_up", "tax": method, "tax_scope": scope},
               "plans": [flat_plan("p", services, default=True,
                                   taxes=[{"name": "VAT", "rate": rate}])]}
    events = [{"event_id": f"e{i}", "subscriber_id": "cust", "service": svc,
               "at": "2024-05-10T10:00:00Z", "quantity": 1}
              for i, svc in enumerate(services)]
    return run_job(folder, catalog, events=events, as_of="2024-06-01T06:00:00Z")


def _the_bill(db: Path, nets: list[str]) -> dict:
    (bill,) = bills(db)
    assert [ln["amount"] for ln in lines(db)] == [Decimal(n) for n in nets]
    assert bill["subtotal"] == sum(Decimal(n) for n in nets)
    assert bill["discount"] == 0
    return bill


@pytest.mark.parametrize("scope, mode", [("line", "per_line"), ("invoice", "global")])
def test_b17_tax_rounded_per_line_or_on_the_invoice(cases, tmp_path, scope, mode):
    case = cases["B17"]
    nets = [ln["net"] for ln in case["input"]["lines"]]
    (rate,) = {ln["tax_rate"] for ln in case["input"]["lines"]}
    assert case["input"]["rounding"] == "half-up to 0.01"
    db = _lines_at_one_rate(tmp_path, nets, rate, scope=scope)
    bill = _the_bill(db, nets)
    expected = case["expected"][mode]
    other = case["expected"]["global" if mode == "per_line" else "per_line"]
    assert bill["tax"] == Decimal(expected["tax"])
    assert bill["total"] == Decimal(expected["total"])
    assert bill["tax"] != Decimal(other["tax"]) and bill["total"] != Decimal(other["total"])
    (vat,) = bill_taxes(db)
    assert (vat["tax_name"], vat["tax_rate"], vat["base"], vat["tax"]) == (
        "VAT", Decimal(rate), Decimal("66.66"), Decimal(expected["tax"]))
    if scope == "line":  # each line carries its own rounded tax: 12.78 + 2.56
        assert [ln["tax"] for ln in lines(db)] == [
            half_up(Decimal(n) * Decimal(rate)) for n in nets]


# --- B19: six lines at 10%, scope and tie-breaking ------------------------------------------

@pytest.mark.parametrize("scope, method, mode", [
    ("invoice", "half_up", "document_level"),
    ("invoice", "half_even", "document_level"),
    ("line", "half_up", "line_level_half_up"),
    ("line", "half_even", "line_level_half_even"),
])
def test_b19_line_or_document_tax_and_ties(cases, tmp_path, scope, method, mode):
    case = cases["B19"]
    nets, rate = case["input"]["lines_net"], case["input"]["tax_rate"]
    db = _lines_at_one_rate(tmp_path, nets, rate, scope=scope, method=method)
    bill = _the_bill(db, nets)
    expected = case["expected"][mode]
    assert bill["subtotal"] == Decimal("12.42")
    assert bill["tax"] == Decimal(expected["tax"])
    assert bill["total"] == Decimal(expected["total"])
    (vat,) = bill_taxes(db)
    assert vat["tax"] == Decimal(expected["tax"])
    if mode == "line_level_half_up":
        assert bill["total"] != Decimal(case["expected"]["document_level"]["total"])
    else:
        assert bill["total"] != Decimal(case["expected"]["line_level_half_up"]["total"])


# --- B23: a fixed discount comes off before VAT ----------------------------------------------

def test_b23_fixed_discount_before_vat(cases, tmp_path):
    case = cases["B23"]
    inp, expected = case["input"], case["expected"]
    assert inp["coupon"]["type"] == "fixed" and inp["discount_before_tax"] is True
    catalog = {
        "currency": "EUR",
        "plans": [{"id": "plan", "taxes": [{"name": "VAT", "rate": inp["vat_rate"]}],
                   "recurring": [{"name": "plan fee", "price": inp["plan_price"],
                                  "per": "month"}],
                   "charges": [{"service": "api", "rate": "0", "per": "unit"}]}],
        "discounts": {"coupon": {"kind": "fixed", "value": inp["coupon"]["amount"]}},
    }
    accounts = {
        "customers": [{"id": "cust", "timezone": "UTC", "currency": "EUR",
                       "discounts": [{"id": "coupon", "from": "2024-05-01T00:00:00Z"}]}],
        "subscriptions": [{"subscriber": "s1", "customer": "cust", "plan": "plan",
                           "start": "2024-05-01T00:00:00Z", "end": "2024-06-01T00:00:00Z"}],
    }
    db = run_job(tmp_path, catalog, accounts=accounts, as_of="2024-06-01T06:00:00Z")
    (bill,) = bills(db)
    assert (bill["period_start"], bill["period_end"]) == (
        instant("2024-05-01T00:00:00Z"), instant("2024-06-01T00:00:00Z"))
    assert bill["subtotal"] == Decimal(inp["plan_price"])
    assert bill["discount"] == Decimal(inp["coupon"]["amount"])
    assert bill["tax"] == Decimal(expected["vat"])
    assert bill["total"] == Decimal(expected["total"])
    (vat,) = bill_taxes(db)
    assert vat["base"] == Decimal(expected["taxable"])
    assert vat["tax"] == Decimal(expected["vat"])
    (line,) = lines(db)
    assert line["amount"] - line["discount"] == Decimal(expected["taxable"])
    # wrong: VAT on the undiscounted price, 10.00 + 2.00 - 5.00 = 7.00
    assert Decimal("7.00") not in {bill["total"]}
    assert vat["tax"] != Decimal(inp["plan_price"]) * Decimal(inp["vat_rate"])


# --- B25: monthly price billed quarterly, first month prorated by calendar days ---------------

def _quarterly(price: str, proration: str, start: str, end: str | None = None):
    """A monthly fee billed on calendar quarters: (catalog, accounts) for one subscription."""
    catalog = {"currency": "EUR", "plans": [{
        "id": "plan", "recurring": [{"name": "monthly fee", "price": price, "per": "month",
                                     "proration": proration}],
        "charges": [{"service": "api", "rate": "0", "per": "unit"}]}]}
    subscription = {"subscriber": "s1", "customer": "cust", "plan": "plan", "start": start}
    if end is not None:
        subscription["end"] = end
    accounts = {"customers": [{"id": "cust", "timezone": "UTC",
                               "cycle": {"interval": "quarterly", "anchor": "calendar"}}],
                "subscriptions": [subscription]}
    return catalog, accounts


def test_b25_monthly_rate_billed_quarterly(cases, tmp_path):
    case = cases["B25"]
    inp, expected = case["input"], case["expected"]
    assert inp["billing_interval_months"] == 3
    period = inp["invoice_period"]
    catalog, accounts = _quarterly(inp["monthly_rate"], "calendar_days",
                                   day_start(period["start"]))
    # as of the quarter's end: the quarter Apr-Jun is the only period so far
    db = run_job(tmp_path, catalog, accounts=accounts, as_of=day_after(period["end"]))
    (bill,) = bills(db)
    assert (bill["cycle_start"], bill["cycle_end"]) == (date(2023, 4, 1), date(2023, 7, 1))
    assert (bill["period_start"], bill["period_end"]) == (
        instant("2023-04-01T00:00:00Z"), instant("2023-07-01T00:00:00Z"))
    assert bill["subtotal"] == bill["total"] == Decimal(expected["invoice_total"])
    # one recurring line per calendar month the quarter touches, April from the start
    months = [("april", day_start(period["start"]), "2023-05-01T00:00:00Z"),
              ("may", "2023-05-01T00:00:00Z", "2023-06-01T00:00:00Z"),
              ("june", "2023-06-01T00:00:00Z", day_after(period["end"]))]
    assert [(ln["line_type"], ln["fee_start"], ln["fee_end"], ln["amount"])
            for ln in lines(db)] == [
        ("recurring_advance", instant(lo), instant(hi), Decimal(expected[month]))
        for month, lo, hi in months]
    # pitfalls quoted by the case: daily rate rounded first, and the pre-fix total
    assert not {Decimal("10928.38"), Decimal("11060.00")} & all_money(db)


def test_b25_month_parts_sum_to_the_fee_rounded_once(cases, tmp_path):
    """B25's rule "round only the invoice total" with two partial months: April 8-30 and
    June 1-2 are 3028.333... and 263.333...; rounded each they would lose a cent. Each
    month's line is the rounded running total less the one before, so the lines sum to the
    quarter's fee rounded once (7241.666... -> 7241.67)."""
    case = cases["B25"]
    inp = case["input"]
    catalog, accounts = _quarterly(inp["monthly_rate"], "calendar_days",
                                   day_start(inp["invoice_period"]["start"]),
                                   "2023-06-03T00:00:00Z")
    db = run_job(tmp_path, catalog, accounts=accounts, as_of="2023-07-01T00:00:00Z")
    (bill,) = bills(db)
    assert [ln["amount"] for ln in lines(db)] == [
        Decimal("3028.33"), Decimal("3950.00"), Decimal("263.34")]
    assert bill["total"] == Decimal("7241.67")


def test_b25_april_part_alone(cases, tmp_path):
    """The April part of B25 as its own bill: the subscription ends with April."""
    case = cases["B25"]
    inp, expected = case["input"], case["expected"]
    catalog, accounts = _quarterly(inp["monthly_rate"], "calendar_days",
                                   day_start(inp["invoice_period"]["start"]),
                                   "2023-05-01T00:00:00Z")
    db = run_job(tmp_path, catalog, accounts=accounts, as_of="2023-07-01T00:00:00Z")
    (bill,) = bills(db)
    assert bill["total"] == Decimal(expected["april"])
    assert Decimal("3028.38") not in all_money(db)


@pytest.mark.parametrize(("start", "total"), [
    ("2023-04-01T00:00:00Z", "11850.00"),  # the whole quarter: three monthly prices
    ("2023-04-08T00:00:00Z", "10938.46"),  # 84 of its 91 days: 11850 x 84 / 91
])
def test_monthly_price_billed_quarterly_by_period_days(tmp_path, start, total):
    """With `period_days` a monthly price billed quarterly is the quarter's price (three
    months) prorated by the quarter's days, never one monthly price for the quarter."""
    catalog, accounts = _quarterly("3950.00", "period_days", start, "2023-07-01T00:00:00Z")
    db = run_job(tmp_path, catalog, accounts=accounts, as_of="2023-07-01T00:00:00Z")
    (bill,) = bills(db)
    assert (bill["cycle_start"], bill["total"]) == (date(2023, 4, 1), Decimal(total))


# --- B27: proration across a month boundary, each month by its own length ---------------------

def test_b27_each_month_prorated_by_its_own_length(cases, tmp_path):
    case = cases["B27"]
    inp, expected = case["input"], case["expected"]
    sub = inp["subscription"]
    catalog = {"currency": "EUR", "plans": [{
        "id": "plan", "recurring": [{"name": "monthly fee", "price": inp["monthly_price"],
                                     "per": "month", "billed": "arrears",
                                     "proration": "calendar_days"}],
        "charges": [{"service": "api", "rate": "0", "per": "unit"}]}]}
    accounts = {
        "customers": [{"id": "cust", "timezone": "UTC",
                       "cycle": {"interval": "monthly", "anchor": "calendar"}}],
        "subscriptions": [{"subscriber": "s1", "customer": "cust", "plan": "plan",
                           "start": day_start(sub["start"]),
                           "end": day_after(sub["end_inclusive"])}],
    }
    db = run_job(tmp_path, catalog, accounts=accounts, as_of="2015-03-01T06:00:00Z")
    got = [(b["cycle_start"], b["cycle_end"], b["total"]) for b in bills(db)]
    assert got == [
        (date(2015, 1, 1), date(2015, 2, 1), Decimal(expected["january_amount"])),
        (date(2015, 2, 1), date(2015, 3, 1), Decimal(expected["february_amount"])),
    ]
    assert sum(total for *_, total in got) == Decimal(expected["amount"])
    jan, feb = fraction(expected["january_fraction"]), fraction(expected["february_fraction"])
    price = Decimal(inp["monthly_price"])
    assert [ln["amount_exact"] for ln in lines(db)] == [
        (price * jan[0] / jan[1]).quantize(Decimal("1e-9")),
        (price * feb[0] / feb[1]).quantize(Decimal("1e-9"))]
    assert Decimal(expected["wrong_amount"]) not in all_money(db)


def fraction(text: str) -> tuple[int, int]:
    """The case's '7/31' as (7, 31)."""
    top, bottom = text.split("/")
    return int(top), int(bottom)


# --- B31: a period with no active days bills nothing, and never a credit ----------------------

@pytest.mark.parametrize("as_of", ["2017-08-15T06:00:00Z", "2017-09-20T06:00:00Z"])
def test_b31_ended_membership_bills_nothing_afterwards(cases, tmp_path, as_of):
    case = cases["B31"]
    member, period = case["input"]["membership"], case["input"]["bill_period"]
    catalog = {"currency": "EUR", "plans": [{
        "id": "membership", "recurring": [{"name": "membership",
                                           "price": member["monthly_price"], "per": "month"}],
        "charges": [{"service": "api", "rate": "0", "per": "unit"}]}]}
    day = member["bill_day"]
    accounts = {
        "customers": [{"id": "member", "timezone": "UTC",
                       "cycle": {"interval": "monthly", "anchor": f"2017-01-{day:02d}T00:00"}}],
        "subscriptions": [{"subscriber": "member", "customer": "member", "plan": "membership",
                           "start": f"2017-07-{day:02d}T00:00:00Z",
                           "end": day_after(member["end_date"])}],
    }
    db = run_job(tmp_path, catalog, accounts=accounts, as_of=as_of)
    found = bills(db)
    # The cycle before, [07-15, 08-15), fully active, at the full monthly price, is the only
    # bill. The idle period [08-15, 09-15) has no active day and nothing was paid for it:
    # no charge and no credit, so no bill is written for it (bills are written for what is
    # due, never empty) and what is billed for it is the case's 0.00.
    assert [(b["cycle_start"], b["cycle_end"], b["total"]) for b in found] == [
        (date(2017, 7, 15), date(2017, 8, 15), Decimal(member["monthly_price"]))]
    idle = date.fromisoformat(period["start"]), date.fromisoformat(day_after(period["end"])[:10])
    billed_for_idle = [b["total"] for b in found if (b["cycle_start"], b["cycle_end"]) == idle]
    assert sum(billed_for_idle, Decimal("0.00")) == Decimal(case["expected"]["bill_total"])
    assert not [ln for ln in lines(db) if ln["cycle_start"] >= idle[0]]
    assert all(b["total"] >= 0 for b in found)
    assert all(ln["amount"] >= 0 for ln in lines(db))
    assert Decimal(case["expected"]["wrong_observed"]) not in all_money(db)


# --- B35: usage in the customer's calendar month, not the UTC one -----------------------------

def test_b35_usage_grouped_by_the_customers_local_month(cases, tmp_path):
    case = cases["B35"]
    inp, expected = case["input"], case["expected"]
    assert inp["billing"].startswith("calendar monthly")
    catalog = {"currency": "EUR",
               "plans": [flat_plan("metered", {"units": inp["unit_price"]}, default=True)]}
    accounts = {
        "customers": [{"id": "dk", "timezone": inp["customer_timezone"],
                       "cycle": {"interval": "monthly", "anchor": "calendar"}}],
        "subscriptions": [{"subscriber": "dk-1", "customer": "dk", "plan": "metered"}],
    }
    events = [{"event_id": f"e{i}", "subscriber_id": "dk-1", "service": "units",
               "at": e["ts"], "quantity": e["units"]} for i, e in enumerate(inp["events"])]
    db = run_job(tmp_path, catalog, events=events, accounts=accounts,
                 as_of="2022-08-01T06:00:00Z")
    june, july = bills(db)
    assert (june["cycle_start"], june["cycle_end"]) == (date(2022, 6, 1), date(2022, 7, 1))
    assert (june["period_start"], june["period_end"]) == (  # CEST is UTC+2
        instant("2022-05-31T22:00:00Z"), instant("2022-06-30T22:00:00Z"))
    assert (july["cycle_start"], july["cycle_end"]) == (date(2022, 7, 1), date(2022, 8, 1))
    by_period = {}
    for ln in lines(db):
        by_period.setdefault(ln["cycle_start"], []).append(ln)
    (june_line,) = by_period[date(2022, 6, 1)]
    (july_line,) = by_period[date(2022, 7, 1)]
    assert june_line["billed_quantity"] == expected["june_units"]
    assert june_line["amount"] == Decimal(expected["june_amount"]) == june["total"]
    assert july_line["billed_quantity"] == expected["july_units_from_these_events"]
    assert july["total"] == expected["july_units_from_these_events"] * Decimal(inp["unit_price"])
    assert june_line["billed_quantity"] != sum(e["units"] for e in inp["events"])  # UTC month


# --- B37: half-open anniversary periods carry the time of day ---------------------------------

def test_b37_last_partial_day_of_a_midday_period_is_billed(cases, tmp_path):
    case = cases["B37"]
    inp, expected = case["input"], case["expected"]
    start = instant(inp["subscription_start"])
    catalog = {"currency": "EUR",
               "plans": [flat_plan("metered", {"units": inp["unit_price"]}, default=True)]}
    accounts = {
        "customers": [{"id": "acct", "timezone": inp["account_timezone"],
                       "cycle": {"interval": "monthly",
                                 "anchor": start.strftime("%Y-%m-%dT%H:%M")}}],
        "subscriptions": [{"subscriber": "acct", "customer": "acct", "plan": "metered",
                           "start": inp["subscription_start"]}],
    }
    events = [{"event_id": f"u{i}", "subscriber_id": "acct", "service": "units",
               "at": u["ts"], "quantity": u["units"]} for i, u in enumerate(inp["usage"])]
    db = run_job(tmp_path, catalog, events=events, accounts=accounts,
                 as_of="2021-09-02T00:00:00Z")
    first, second = bills(db)
    assert (first["period_start"], first["period_end"]) == (
        start, instant("2021-08-01T15:00:00Z"))
    assert (second["period_start"], second["period_end"]) == (
        instant("2021-08-01T15:00:00Z"), instant("2021-09-01T15:00:00Z"))
    (first_line,) = [ln for ln in lines(db) if ln["period_start"] == first["period_start"]]
    (second_line,) = [ln for ln in lines(db) if ln["period_start"] == second["period_start"]]
    assert first_line["billed_quantity"] == expected["first_period_units"]
    assert first_line["amount"] == first["total"] == Decimal(expected["first_period_amount"])
    assert second_line["billed_quantity"] == expected["next_period_units_from_these_points"]
    assert first["total"] != Decimal(expected["wrong_first_period_amount"])


# --- B40: a retried event with the same id adds no usage --------------------------------------

def _b40_setup(case) -> tuple[dict, list[dict]]:
    inp = case["input"]
    assert inp["aggregation"] == "sum"
    catalog = {"currency": "EUR",
               "plans": [flat_plan("metered", {"calls": inp["unit_price"]}, default=True)]}
    events = [{"event_id": e["transaction_id"], "subscriber_id": "cust", "service": "calls",
               "at": e["ts"], "quantity": e["value"]} for e in inp["events"]]
    return catalog, events


def test_b40_retry_in_the_same_batch_is_quarantined(cases, tmp_path):
    case = cases["B40"]
    expected = case["expected"]
    catalog, events = _b40_setup(case)
    db = run_job(tmp_path, catalog, events=events, as_of="2024-06-01T06:00:00Z")
    (bill,) = bills(db)
    (line,) = lines(db)
    assert line["billed_quantity"] == expected["billed_units"]
    assert line["amount"] == bill["total"] == Decimal(expected["amount"])
    assert bill["total"] != Decimal(expected["wrong_amount"])
    quarantined = sql_rows(db, "SELECT event_id, reason FROM quarantine")
    assert quarantined == [{"event_id": "t-1", "reason": "duplicate"}]
    rated = sql_rows(db, "SELECT event_id FROM rated_usage WHERE status = 'rated' ORDER BY 1")
    assert [r["event_id"] for r in rated] == ["t-1", "t-2"]


def test_b40_retry_in_a_later_run_is_quarantined(cases, tmp_path):
    """DESIGN.md: "A duplicate is an event_id already billed by a different run"; it is
    quarantined as `duplicate` whenever it arrives (issue 4). The first run bills the two
    distinct events; the client's retry arrives alone in the next night's file."""
    case = cases["B40"]
    expected = case["expected"]
    catalog, events = _b40_setup(case)
    original, retry = [events[0], events[2]], events[1]
    assert retry["event_id"] == original[0]["event_id"]
    out = tmp_path / "out"
    db = run_job(tmp_path / "night1", catalog, events=original, out=out,
                 as_of="2024-05-10T23:00:00Z")
    assert [b["total"] for b in bills(db)] == [Decimal(expected["amount"])]
    db = run_job(tmp_path / "night2", catalog, events=[retry], out=out,
                 as_of="2024-05-11T23:00:00Z")
    quarantined = sql_rows(db, "SELECT event_id, reason FROM quarantine")
    assert quarantined == [{"event_id": retry["event_id"], "reason": "duplicate"}]
    # the May bill is as the first night left it: the retry adds no usage
    (bill,) = bills(db)
    (line,) = lines(db)
    assert (line["line_type"], line["billed_quantity"]) == ("usage", expected["billed_units"])
    assert line["amount"] == bill["total"] == Decimal(expected["amount"])
    assert Decimal(expected["wrong_amount"]) not in all_money(db)


# --- B42: a zero-decimal currency ------------------------------------------------------------

def test_b42_jpy_prorated_fee_has_no_minor_unit(cases, tmp_path):
    case = cases["B42"]
    inp, expected = case["input"], case["expected"]
    assert inp["currency_exponent"] == 0
    catalog = {"currency": inp["currency"], "plans": [{
        "id": "plan", "currency": inp["currency"],
        "recurring": [{"name": "monthly fee", "price": inp["monthly_price"], "per": "month",
                       "billed": "arrears", "proration": "calendar_days"}],
        "charges": [{"service": "api", "rate": "0", "per": "unit"}]}]}
    # a 31-day month, terminated after its first `active_days_before_termination` days
    assert inp["month_days"] == 31
    end = date(2024, 1, 1) + timedelta(days=inp["active_days_before_termination"])
    accounts = {
        "customers": [{"id": "jp", "timezone": "UTC", "currency": inp["currency"],
                       "cycle": {"interval": "monthly", "anchor": "calendar"}}],
        "subscriptions": [{"subscriber": "jp", "customer": "jp", "plan": "plan",
                           "start": "2023-12-01T00:00:00Z", "end": f"{end}T00:00:00Z"}],
    }
    db = run_job(tmp_path, catalog, accounts=accounts, as_of="2024-02-01T06:00:00Z")
    december, january = bills(db)
    assert december["total"] == Decimal(inp["monthly_price"])
    assert (january["cycle_start"], january["cycle_end"]) == (date(2024, 1, 1),
                                                             date(2024, 2, 1))
    assert january["currency"] == "JPY"
    assert january["total"] == Decimal(expected["fee"])
    assert january["total"] == january["total"].to_integral_value()  # no minor unit
    assert int(january["total"]) == expected["gateway_amount_minor_units"]
    (jan_line,) = [ln for ln in lines(db) if ln["cycle_start"] == date(2024, 1, 1)]
    assert jan_line["amount"] == Decimal(expected["fee"])
    assert not {Decimal("193548"), Decimal("1935.48")} & all_money(db)


# --- found while writing these cases ----------------------------------------------------------

def test_b35_subscribed_usage_is_billed_when_the_catalog_has_no_default_plan(cases, tmp_path):
    """B35 as written, with the customer's plan not marked `default`: every event belongs
    to a subscription in force, so no default plan is needed to rate or bill it."""
    case = cases["B35"]
    inp, expected = case["input"], case["expected"]
    catalog = {"currency": "EUR",
               "plans": [flat_plan("metered", {"units": inp["unit_price"]})]}
    accounts = {
        "customers": [{"id": "dk", "timezone": inp["customer_timezone"]}],
        "subscriptions": [{"subscriber": "dk-1", "customer": "dk", "plan": "metered"}],
    }
    events = [{"event_id": f"e{i}", "subscriber_id": "dk-1", "service": "units",
               "at": e["ts"], "quantity": e["units"]} for i, e in enumerate(inp["events"])]
    db = run_job(tmp_path, catalog, events=events, accounts=accounts,
                 as_of="2022-08-01T06:00:00Z")
    june, july = bills(db)
    assert june["total"] == Decimal(expected["june_amount"])
    assert july["total"] == expected["july_units_from_these_events"] * Decimal(inp["unit_price"])


def test_b17_a_second_run_in_one_process_reads_the_changed_catalog(cases, tmp_path):
    """B17 run twice from one folder, the catalog's `tax_scope` edited in between (what an
    operator does when they change the rounding policy): the second run must price with the
    catalog as it is now, not as it was when the same path was first read."""
    case = cases["B17"]
    nets = [ln["net"] for ln in case["input"]["lines"]]
    (rate,) = {ln["tax_rate"] for ln in case["input"]["lines"]}
    for scope, mode in (("line", "per_line"), ("invoice", "global")):
        db = _lines_at_one_rate(tmp_path, nets, rate, scope=scope)
        (bill,) = bills(db)
        assert (bill["tax"], bill["total"]) == (Decimal(case["expected"][mode]["tax"]),
                                                Decimal(case["expected"][mode]["total"])), scope


# --- B32: bill cycle day 31, monthly in advance, through the job ------------------------------

def _b32_job(folder: Path, case: dict, zone: str, as_of: str) -> Path:
    inp = case["input"]
    assert inp["billing"] == "monthly in advance"
    start = date.fromisoformat(inp["start"])
    assert start.day == inp["bill_cycle_day"]
    catalog = {"currency": "EUR", "plans": [{
        "id": "plan", "recurring": [{"name": "monthly fee", "price": "10.00", "per": "period",
                                     "billed": "advance"}],
        "charges": [{"service": "api", "rate": "0", "per": "unit"}]}]}
    local_start = f"{start.isoformat()}T00:00"
    accounts = {
        "customers": [{"id": "cust", "timezone": zone,
                       "cycle": {"interval": "monthly", "anchor": local_start}}],
        "subscriptions": [{"subscriber": "s1", "customer": "cust", "plan": "plan",
                           "start": datetime.fromisoformat(local_start).replace(
                               tzinfo=ZoneInfo(zone)).isoformat()}],
    }
    return run_job(folder, catalog, accounts=accounts, as_of=as_of)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_b32_bill_cycle_day_31_bills_every_month_in_advance(cases, tmp_path, zone):
    case = cases["B32"]
    want = [tuple(date.fromisoformat(d) for d in p) for p in case["expected"]["periods"]]
    # as of the morning the last expected period begins: billed in advance, so it is there
    as_of = datetime.combine(want[-1][0], datetime.min.time(), ZoneInfo(zone)) + timedelta(
        hours=6)
    db = _b32_job(tmp_path, case, zone, as_of.astimezone(UTC).isoformat())
    found = bills(db)
    assert [(b["cycle_start"], b["cycle_end"]) for b in found] == want
    for bill, (lo, hi) in zip(found, want, strict=True):  # local midnights, half-open
        assert bill["period_start"] == datetime.combine(lo, datetime.min.time(), ZoneInfo(zone))
        assert bill["period_end"] == datetime.combine(hi, datetime.min.time(), ZoneInfo(zone))
        assert bill["total"] == Decimal("10.00")
    assert [(ln["cycle_start"], ln["cycle_end"], ln["line_type"], ln["amount"])
            for ln in lines(db)] == [(lo, hi, "recurring_advance", Decimal("10.00"))
                                     for lo, hi in want]


def test_b32_the_anchor_returns_to_the_31st_in_july(cases, tmp_path):
    case = cases["B32"]
    db = _b32_job(tmp_path, case, "UTC", "2017-07-01T06:00:00Z")
    got = [(b["cycle_start"], b["cycle_end"]) for b in bills(db)]
    want = [tuple(date.fromisoformat(d) for d in p) for p in case["expected"]["periods"]]
    assert got == [*want, (date(2017, 6, 30), date(2017, 7, 31))]


# --- B34: a three-month trial from 31 January ends on 30 April --------------------------------

def _b34_job(folder: Path, case: dict, cycle: dict, per: str) -> list[dict]:
    inp, start = case["input"], case["input"]["start"]
    catalog = {"currency": "EUR", "plans": [{
        "id": "plan", "recurring": [{"name": "fee", "price": "30.00", "per": per,
                                     "proration": "calendar_days"}],
        "charges": [{"service": "api", "rate": "0", "per": "unit"}]}]}
    accounts = {
        "customers": [{"id": "cust", "timezone": "UTC", "cycle": cycle}],
        "subscriptions": [{"subscriber": "s1", "customer": "cust", "plan": "plan",
                           "start": day_start(start), "trial_months": inp["add_months"]}],
    }
    return lines(run_job(folder, catalog, accounts=accounts, as_of="2022-06-15T06:00:00Z"))


def test_b34_trial_ends_on_april_30_on_an_anniversary_cycle(cases, tmp_path):
    """Billed from the start's anniversary (the 31st, clamped): the trial covers three whole
    periods and the first period charged is the one that begins on 30 April."""
    case = cases["B34"]
    found = _b34_job(tmp_path, case, {"interval": "monthly",
                                      "anchor": f"{case['input']['start']}T00:00"}, "period")
    end = date.fromisoformat(case["expected"]["end"])
    assert [(ln["cycle_start"], ln["cycle_end"], ln["amount"]) for ln in found] == [
        (end, date(2022, 5, 31), Decimal("30.00")),
        (date(2022, 5, 31), date(2022, 6, 30), Decimal("30.00"))]
    assert found[0]["period_start"] == instant(day_start(case["expected"]["end"]))
    wrong = date.fromisoformat(case["expected"]["wrong_rollover"])
    assert all(ln["cycle_start"] != wrong for ln in found)


def test_b34_fee_prorated_from_the_trial_end_on_a_calendar_cycle(cases, tmp_path):
    """Calendar months: nothing for January to March, April's last day (1/30 of the
    monthly fee), then whole months. A trial ending on 1 May would leave April empty."""
    case = cases["B34"]
    found = _b34_job(tmp_path, case, {"interval": "monthly", "anchor": "calendar"}, "month")
    assert [(ln["cycle_start"], ln["amount"]) for ln in found] == [
        (date(2022, 4, 1), Decimal("1.00")), (date(2022, 5, 1), Decimal("30.00")),
        (date(2022, 6, 1), Decimal("30.00"))]
    assert found[0]["amount_exact"] == Decimal("1.000000000")


# --- B29: plan changes, restart or prorate, credits from the full price held ------------------

B29_DAY = Decimal("1")  # the case's prices make one day of plan A cost exactly 1


def _b29_job(folder: Path, case: dict, policy: str, *, as_of: str = "2025-02-01T06:00:00Z",
             order: list[str] | None = None, vat: str | None = None) -> Path:
    """The case's subscribe/upgrade events as subscriptions that end where the next starts
    (``order`` replaces the plans taken, for a downgrade); a yearly cycle from the first
    subscription."""
    inp = case["input"]
    assert inp["model"].startswith("upgrade restarts the annual period")
    plans = [{"id": name, "recurring": [{"name": f"plan {name}", "price": price,
                                         "per": "year"}],
              "charges": [{"service": "api", "rate": "0", "per": "unit"}]}
             for name, price in inp["plans_per_year"].items()]
    if vat:
        for plan in plans:
            plan["taxes"] = [{"name": "VAT", "rate": vat}]
    taken = order or [e["action"][-1] for e in inp["events"]]
    dates = [e["date"] for e in inp["events"]]
    subscriptions = []
    for i, (plan, start) in enumerate(zip(taken, dates, strict=True)):
        sub = {"subscriber": "buyer", "customer": "buyer", "plan": plan,
               "start": day_start(start)}
        if i + 1 < len(dates):
            sub["end"] = day_start(dates[i + 1])
        if i:
            sub["change"] = policy
        subscriptions.append(sub)
    accounts = {"customers": [{"id": "buyer", "timezone": "UTC",
                               "cycle": {"interval": "yearly",
                                         "anchor": f"{dates[0]}T00:00"}}],
                "subscriptions": subscriptions}
    return run_job(folder, {"currency": "EUR", "plans": plans}, accounts=accounts,
                   as_of=as_of)


def test_b29_restart_credits_the_full_price_of_the_plan_held(cases, tmp_path):
    case = cases["B29"]
    expected, events = case["expected"], case["input"]["events"]
    db = _b29_job(tmp_path, case, "restart")
    first, second, third = bills(db)
    # each change restarts the yearly period there: the period before it is cut short
    assert [(b["cycle_start"], b["cycle_end"]) for b in (first, second, third)] == [
        (date(2025, 1, 1), date(2025, 1, 11)), (date(2025, 1, 11), date(2025, 1, 21)),
        (date(2025, 1, 21), date(2026, 1, 21))]
    assert first["total"] == Decimal(events[0]["paid"])
    for bill, step in ((second, "upgrade1"), (third, "upgrade2")):
        mine = [ln for ln in lines(db) if ln["period_start"] == bill["period_start"]]
        (credit,) = [ln for ln in mine if ln["line_type"] == "recurring_credit"]
        (fee,) = [ln for ln in mine if ln["line_type"] == "recurring_advance"]
        assert credit["amount"] == -Decimal(expected[step]["credit"])
        assert bill["total"] == Decimal(expected[step]["charge"])
        assert fee["amount"] - Decimal(expected[step]["credit"]) == bill["total"]
    assert [ln["amount"] for ln in lines(db) if ln["line_type"] == "recurring_advance"] == [
        Decimal(p) for p in case["input"]["plans_per_year"].values()]  # each a full year
    wrong = expected["wrong_upgrade2"]
    assert not {Decimal(wrong["credit"]), -Decimal(wrong["credit"]),
                Decimal(wrong["charge"])} & all_money(db)


def test_b29_prorate_keeps_the_period_and_credits_within_it(cases, tmp_path):
    """The same changes under `prorate`: one yearly bill; each plan is charged as it stood
    when the period began, its unused part is credited from its full price, and the new
    plan is charged for the rest of the period (2025 has 365 days: a day of A costs 1)."""
    case = cases["B29"]
    db = _b29_job(tmp_path, case, "prorate")
    (bill,) = bills(db)
    assert (bill["cycle_start"], bill["cycle_end"]) == (date(2025, 1, 1), date(2026, 1, 1))
    got = [(ln["line_type"], ln["amount"]) for ln in lines(db)]
    assert sorted(got) == sorted([
        ("recurring_advance", Decimal("365.00")), ("recurring_credit", Decimal("-355.00")),
        ("recurring_advance", Decimal("710.00")), ("recurring_credit", Decimal("-690.00")),
        ("recurring_advance", Decimal("1035.00"))])
    # 10 days of A, 10 days of B, the rest of the year on C
    assert bill["total"] == 10 * B29_DAY + 20 * B29_DAY + 345 * 3 * B29_DAY


def test_b29_credit_appears_once_the_change_has_happened(cases, tmp_path):
    case = cases["B29"]
    db = _b29_job(tmp_path, case, "restart", as_of="2025-01-15T06:00:00Z")
    assert [(ln["cycle_start"], ln["line_type"], ln["amount"]) for ln in lines(db)] == [
        (date(2025, 1, 1), "recurring_advance", Decimal("365.00")),
        (date(2025, 1, 11), "recurring_advance", Decimal("730.00")),
        (date(2025, 1, 11), "recurring_credit", Decimal("-355.00"))]
    assert [b["total"] for b in bills(db)] == [Decimal("365.00"), Decimal("375.00")]


# --- credits larger than the charges are carried, never a silently negative bill -------------

def test_a_downgrade_credit_is_carried_to_the_next_bills_not_a_negative_total(cases, tmp_path):
    """B29's dates as downgrades C -> B -> A under `restart`, with 20% VAT: each restart
    bill's credit exceeds the new plan's fee. The bill totals 0 with a `credit_carried` line
    holding what it is short (tax reversed included); the next bill with a positive total
    takes it back as `credit_applied`; what is left is the customer's balance."""
    case = cases["B29"]
    db = _b29_job(tmp_path, case, "restart", order=["C", "B", "A"],
                  as_of="2026-02-01T06:00:00Z", vat="0.20")
    found = bills(db)
    assert [(b["cycle_start"], b["subtotal"], b["tax"], b["total"]) for b in found] == [
        (date(2025, 1, 1), Decimal("1095.00"), Decimal("219.00"), Decimal("1314.00")),
        # C's unused 355/365 (1065.00) against B's year (730.00): 335.00 short + VAT
        (date(2025, 1, 11), Decimal("67.00"), Decimal("-67.00"), Decimal("0.00")),
        # B's unused 355/365 (710.00) against A's year (365.00): 345.00 short + VAT
        (date(2025, 1, 21), Decimal("69.00"), Decimal("-69.00"), Decimal("0.00")),
        # A's next year: 438.00 with VAT, all of it paid from the balance of 816.00
        (date(2026, 1, 21), Decimal("-73.00"), Decimal("73.00"), Decimal("0.00"))]
    balance_lines = [(ln["cycle_start"], ln["line_type"], ln["amount"], ln["discount"],
                      ln["tax"]) for ln in lines(db) if ln["service"] == "credit"]
    assert balance_lines == [
        (date(2025, 1, 11), "credit_carried", Decimal("402.00"), 0, 0),
        (date(2025, 1, 21), "credit_carried", Decimal("414.00"), 0, 0),
        (date(2026, 1, 21), "credit_applied", Decimal("-438.00"), 0, 0)]
    (balance,) = [_typed(r) for r in sql_rows(db, "SELECT * FROM balances")]
    assert (balance["customer_id"], Decimal(balance["carried"]), Decimal(balance["applied"]),
            Decimal(balance["balance"])) == ("buyer", Decimal("816.00"), Decimal("438.00"),
                                             Decimal("378.00"))
    assert all(b["total"] >= 0 for b in found)
    for bill in found:  # still exactly its lines less discounts plus exclusive taxes
        mine = [ln for ln in lines(db) if ln["period_start"] == bill["period_start"]]
        assert bill["total"] == sum(ln["amount"] - ln["discount"] for ln in mine) + bill["tax"]
        assert bill["subtotal"] == sum(ln["amount"] for ln in mine)


def test_no_balance_lines_when_every_bill_is_positive(cases, tmp_path):
    db = _b29_job(tmp_path, cases["B29"], "restart")
    assert not [ln for ln in lines(db) if ln["service"] == "credit"]
    assert sql_rows(db, "SELECT * FROM balances") == []
