"""A table of plain holdings (one open-ended plan per subscriber) is read column by column;
it must give exactly the accounts the row-by-row reading gives, and anything wrong in it
must still be reported row by row."""

import polars as pl
import pytest

from rules import AccountsError, load_accounts
from rules.accounts import _plain_holdings, _row_by_row

TABLE = """\
subscriber_id,plan_id,customer_id,timezone,currency,tax_jurisdiction,discounts,cycle,anchor
S1,basic,,,,,,,
S2, pro ,ACME,Europe/Berlin,EUR,DE,loyal; staff,monthly,2026-01-15T00:00
S3,basic,ACME,Europe/Berlin,EUR,DE,loyal; staff,monthly,2026-01-15T00:00
S4,dollars,,America/New_York,USD,,,quarterly,
S5,pro,,,,,staff,,
"""


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_plain_holdings_read_as_the_row_by_row_reading_reads_them(tmp_path, catalog, suffix):
    path = tmp_path / f"accounts.{suffix}"
    if suffix == "csv":
        path.write_text(TABLE)
    else:
        (tmp_path / "t.csv").write_text(TABLE)
        pl.read_csv(tmp_path / "t.csv", infer_schema=False).write_parquet(path)
    quick, slow = _plain_holdings(path, catalog), _row_by_row(path, catalog)
    assert quick is not None
    assert quick.subscriptions.equals(slow.subscriptions)
    assert quick.customers == slow.customers
    for cid, customer in slow.customers.items():  # made from a shared description, as given
        assert quick.customers[cid].model_fields_set == customer.model_fields_set
        assert quick.customers[cid].model_dump_json() == customer.model_dump_json()
    assert list(quick.customers) == ["S1", "ACME", "S4", "S5"]
    assert quick.customers["ACME"].cycle.cycle() == slow.customers["ACME"].cycle.cycle()
    assert quick.digest == slow.digest


@pytest.mark.parametrize(("row", "words"), [
    ("S9,gold,,,,,,,", "plan 'gold' is not in the catalog"),
    ("S9,basic,,Mars/Olympus,,,,,", "unknown time zone"),
    ("S9,basic,,,EUX,,,,", "unknown currency"),
    ("S9,dollars,,,EUR,,,,", "bills in USD"),
    ("S9,basic,,,,,gold,,", "no discount 'gold'"),
    ("S9,basic,ACME,Europe/Paris,,,,,", "customer 'ACME' has other zone"),
    ("S1,pro,,,,,,,", "must not overlap"),
    ("S9,basic,,,,,,fortnightly,", "should be 'weekly'"),
    (",basic,,,,,,,", "subscriber_id is empty"),
])
def test_a_wrong_row_is_named_by_the_row_by_row_reading(tmp_path, catalog, row, words):
    path = tmp_path / "accounts.csv"
    path.write_text(TABLE + row + "\n")
    assert _plain_holdings(path, catalog) is None
    with pytest.raises(AccountsError) as info:
        load_accounts(path, catalog)
    assert any(words in p.what for p in info.value.problems), info.value.problems


def test_dates_trials_and_changes_take_the_row_by_row_reading(tmp_path, catalog):
    path = tmp_path / "accounts.csv"
    path.write_text("subscriber_id,plan_id,start\nS1,basic,2026-01-01T00:00:00Z\n")
    assert _plain_holdings(path, catalog) is None
    assert load_accounts(path, catalog).subscriptions["start"].null_count() == 0
