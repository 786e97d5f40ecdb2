"""Bills are priced a range of customers at a time (memory stays bounded as usage grows);
the tables hold exactly, and in the same order, what one pass over every customer gives."""

from pathlib import Path

import duckdb
import pytest

import bills.build
from ratecycle.demo import run_demo

PRICED = ("bills", "bill_lines", "bill_taxes", "bill_discounts", "balances",
          "bundle_balances")


def tables(db: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {name: con.sql(f"SELECT * FROM {name} ORDER BY rowid").fetchall()
                for name in PRICED}


@pytest.fixture(scope="module")
def one_pass(tmp_path_factory) -> dict[str, list[tuple]]:
    out = tmp_path_factory.mktemp("one-pass")
    run_demo(out, subscribers=150, events=6_000, quiet=True)
    return tables(out / "bills.duckdb")


@pytest.mark.parametrize("lines_per_part", [1, 300])
def test_parts_give_what_one_pass_gives(one_pass, tmp_path, monkeypatch, lines_per_part):
    monkeypatch.setattr(bills.build, "LINES_PER_PART", lines_per_part)
    run_demo(tmp_path, subscribers=150, events=6_000, quiet=True)
    parted = tables(tmp_path / "bills.duckdb")
    assert len(one_pass["bills"]) > 50 and one_pass["bill_discounts"]
    for name in PRICED:
        assert parted[name] == one_pass[name], name


@pytest.mark.parametrize("events_per_range", [1, 700])
def test_usage_summed_by_groups_of_files_gives_what_one_query_gives(
        one_pass, tmp_path, monkeypatch, events_per_range):
    # every file a group of its own, customers in ranges of one event and of 700
    monkeypatch.setattr(bills.build, "EVENTS_AT_ONCE", 1)
    monkeypatch.setattr(bills.build, "EVENTS_PER_RANGE", events_per_range)
    run_demo(tmp_path, subscribers=150, events=6_000, quiet=True)
    assert len(list(tmp_path.glob("**/*.parquet"))) > 1
    assert not list(tmp_path.glob(".bills.duckdb.*"))  # the lines on their way are gone
    grouped = tables(tmp_path / "bills.duckdb")
    for name in PRICED:
        assert grouped[name] == one_pass[name], name
