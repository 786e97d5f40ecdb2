"""A line with no service belongs to no tax case: it is never taxed, and the other bills'
taxes do not change because of it."""

import duckdb
import polars as pl

from bills.build import _bill_starts, _price_bills
from bills.schema import BILL_KEYS
from ratecycle.demo import run_demo
from rules import load_accounts, load_catalog


def test_lines_without_a_service_are_not_taxed(tmp_path):
    run_demo(tmp_path, subscribers=40, events=1_500, quiet=True)
    catalog = load_catalog(tmp_path / "input" / "catalog.yaml")
    accounts = load_accounts(tmp_path / "input" / "accounts.csv", catalog)
    with duckdb.connect(str(tmp_path / "bills.duckdb"), read_only=True) as con:
        lines = con.sql("SELECT * EXCLUDE (discount, tax) FROM bill_lines ORDER BY rowid").pl()
    bill = lines.select(pl.struct(BILL_KEYS).rle_id()).to_series().to_numpy()
    start = _bill_starts(bill)
    _, taxed, _, _ = _price_bills(lines, bill, start, catalog, accounts)
    no_service = lines.with_columns(
        service=pl.when(pl.Series(bill == 0)).then(None).otherwise(pl.col("service")))
    _, bills, taxes, _ = _price_bills(no_service, bill, start, catalog, accounts)
    assert taxed["tax"][0] > 0 and bills["tax"][0] == 0
    first = bills[:1].select(BILL_KEYS)
    assert taxes.join(first, on=BILL_KEYS, how="semi", nulls_equal=True).is_empty()
    assert bills[1:].equals(taxed[1:])
