"""Declared rounding on bills: the currency's minor units, the catalog's line and tax methods,
several taxes on one subtotal, and cycles in the plan's zone.

Worked by hand (JPY has no minor unit; Paris is UTC+2 from 2026-03-29):
  a  sms 2026-03-31T21:59:59Z = 23:59:59 in Paris -> March cycle, 2.5
  b  sms 2026-03-31T22:00:00Z = 00:00:00 in Paris -> April cycle, 2.5
  c  sms in April, 2.5
  d  1,500,001 bytes of data at 3 per MB in whole MB -> 2 MB = 6
  March: sms line 2.5 -> half-even 2; taxes 10% of 2 = 0.2 -> down 0, 1.5% -> 0; total 2
  April: sms line 5, data line 6, subtotal 11; 10% = 1.1 -> down 1; 1.5% = 0.165 -> 0;
         total 12
"""

from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from bills import run_query
from ratecycle.cli import main

CATALOG = """\
catalog: 1
currency: JPY
timezone: Europe/Paris
rounding: {line: half_even, tax: down}
plans:
  - id: p
    default: true
    taxes: [{name: CT, rate: "0.10"}, {name: local, rate: "0.015"}]
    charges:
      - {service: sms, rate: "2.5", per: message}
      - {service: data, rate: "3", per: MB, increments: 1000000/1000000}
"""
USAGE = {
    "event_id": ["a", "b", "c", "d"],
    "subscriber_id": ["S1"] * 4,
    "service": ["sms", "sms", "sms", "data"],
    "started_at": ["2026-03-31T21:59:59Z", "2026-03-31T22:00:00Z", "2026-04-01T10:00:00Z",
                   "2026-04-02T10:00:00Z"],
    "quantity": [1, 1, 1, 1_500_001],
    "destination": ["x", "x", "x", "internet"],
}


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("jpy")
    (folder / "catalog.yaml").write_text(CATALOG)
    pl.DataFrame(USAGE).with_columns(
        pl.col("started_at").str.to_datetime(time_zone="UTC")
    ).write_parquet(folder / "usage.parquet")
    assert main(["run", "--format", "parquet", str(folder / "usage.parquet"), "--catalog",
                 str(folder / "catalog.yaml"), "--out", str(folder / "out"),
                 "--as-of", "2026-05-01T00:00:00Z"]) == 0
    return folder / "out" / "bills.duckdb"


def query(db: Path, sql: str, tmp_path: Path) -> pl.DataFrame:
    out = tmp_path / "q.parquet"
    run_query(db, sql, output=out, fmt="parquet")
    return pl.read_parquet(out)


def test_cycles_follow_the_plan_zone(db, tmp_path):
    events = query(db, "SELECT event_id, cycle_start, cycle_end FROM rated_usage ORDER BY 1",
                   tmp_path)
    assert events.rows() == [
        ("a", date(2026, 3, 1), date(2026, 4, 1)),
        ("b", date(2026, 4, 1), date(2026, 5, 1)),
        ("c", date(2026, 4, 1), date(2026, 5, 1)),
        ("d", date(2026, 4, 1), date(2026, 5, 1)),
    ]


def test_lines_round_to_whole_yen_by_the_declared_method(db, tmp_path):
    lines = query(db, """SELECT cycle_start, service, billed_quantity, amount_exact, amount
                         FROM bill_lines ORDER BY 1, 2""", tmp_path)
    assert lines.rows() == [
        (date(2026, 3, 1), "sms", 1, Decimal("2.5"), Decimal("2")),
        (date(2026, 4, 1), "data", 2_000_000, Decimal("6"), Decimal("6")),
        (date(2026, 4, 1), "sms", 2, Decimal("5"), Decimal("5")),
    ]


def test_each_tax_is_rounded_down_on_the_subtotal(db, tmp_path):
    taxes = query(db, "SELECT cycle_start, tax_name, base, tax FROM bill_taxes ORDER BY 1, 2",
                  tmp_path)
    assert taxes.rows() == [
        (date(2026, 3, 1), "CT", Decimal("2"), Decimal("0")),
        (date(2026, 3, 1), "local", Decimal("2"), Decimal("0")),
        (date(2026, 4, 1), "CT", Decimal("11"), Decimal("1")),
        (date(2026, 4, 1), "local", Decimal("11"), Decimal("0")),
    ]


def test_bill_totals(db, tmp_path):
    bills = query(db, "SELECT cycle_start, lines, events, subtotal, tax, total FROM bills "
                  "ORDER BY 1", tmp_path)
    assert bills.rows() == [
        (date(2026, 3, 1), 1, 1, Decimal("2"), Decimal("0"), Decimal("2")),
        (date(2026, 4, 1), 2, 3, Decimal("11"), Decimal("1"), Decimal("12")),
    ]


INCLUSIVE = """\
catalog: 1
currency: EUR
timezone: UTC
rounding: {{tax_scope: {scope}}}
plans:
  - id: p
    default: true
    taxes: [{{name: state, rate: "0.10", inclusive: true}},
            {{name: city, rate: "0.05", inclusive: true, compound: {compound}, order: 1}}]
    charges:
      - {{service: sms, rate: "{price}", per: message}}
"""


@pytest.mark.parametrize("scope", ["invoice", "line"])
@pytest.mark.parametrize(("compound", "price", "state", "city"), [
    # side by side: 115.00 = 100.00 net + 10% + 5% of it (not 10.45 then 4.98)
    ("false", "115.00", "10.00", "5.00"),
    # compound: 115.50 = 100.00 + 10.00 + 5% of 110.00
    ("true", "115.50", "10.00", "5.50"),
])
def test_inclusive_taxes_come_out_of_the_price_together(tmp_path, scope, compound, price,
                                                        state, city):
    (tmp_path / "catalog.yaml").write_text(INCLUSIVE.format(scope=scope, compound=compound,
                                                            price=price))
    pl.DataFrame({"event_id": ["a"], "subscriber_id": ["S1"], "service": ["sms"],
                  "started_at": ["2026-04-01T10:00:00Z"], "quantity": [1],
                  "destination": ["x"]}).with_columns(
        pl.col("started_at").str.to_datetime(time_zone="UTC")
    ).write_parquet(tmp_path / "usage.parquet")
    assert main(["run", "--format", "parquet", str(tmp_path / "usage.parquet"), "--catalog",
                 str(tmp_path / "catalog.yaml"), "--out", str(tmp_path / "out"),
                 "--as-of", "2026-05-01T00:00:00Z"]) == 0
    db = tmp_path / "out" / "bills.duckdb"
    taxes = query(db, "SELECT tax_name, base, tax, inclusive FROM bill_taxes ORDER BY 1",
                  tmp_path)
    assert taxes.rows() == [("city", Decimal(price), Decimal(city), True),
                            ("state", Decimal(price), Decimal(state), True)]
    (total,) = query(db, "SELECT total FROM bills", tmp_path)["total"]
    assert total == Decimal(price)  # inclusive taxes add nothing to the total
