"""The benchmark's three implementations agree exactly: ratecycle, the DuckDB SQL oracle and
the plain Polars oracle (bench/) rate a generated 20k-event sample of the full tariff
(bundles and graduated tiers included), plus edge cases, to the same value in every rated
column ratecycle writes (status, reason, plan, tariff, deck, matched prefix, destination
name, rate and its unit, connect fee, increments, billed and bundle quantity, bundle
draws, tier, amount to 9 decimals, flags, currency, customer, billing periods, late, and
the spans with their costs) except the run id, which each implementation makes its own;
and every bill's total (ratecycle's bills.duckdb against the SQL bill oracle over each
oracle's events) is the same to the cent."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is a folder of scripts beside the packages
    sys.path.insert(0, str(ROOT))

from bench import oracle_bills, oracle_duckdb, oracle_polars  # noqa: E402
from bench.generate import Params, generate, usage_files  # noqa: E402
from bench.oracle_spec import OUTPUT_SCHEMA  # noqa: E402
from bench.side_by_side import COMPARED  # noqa: E402
from bills import build_bills  # noqa: E402
from ingest.schema import USAGE_SCHEMA  # noqa: E402
from rating import compile_catalog, rate_batch  # noqa: E402
from rating.schema import RATED_COLUMNS  # noqa: E402
from rules import load_accounts, load_catalog  # noqa: E402

# every rated column but run_id (each implementation writes its own run id)
COLUMNS = [c for c in OUTPUT_SCHEMA if c != "run_id"]


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _usage(rows: list[tuple], subscriber: str) -> pl.DataFrame:
    """Usage rows (event id, service, start UTC, quantity, destination, unrated reason, and
    optionally the subscriber) in the usage schema; ``subscriber`` where a row names none."""
    names = ["event_id", "service", "started_at", "quantity", "destination", "unrated_reason",
             "subscriber_id"]
    frame = pl.DataFrame([dict(zip(names, (*r, subscriber)[:7], strict=True)) for r in rows])
    return frame.select([(pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
                         for c, t in USAGE_SCHEMA.items()])


def _edge_cases() -> pl.DataFrame:
    """Calls on band edges (Europe/Berlin: peak Mon-Fri 08-19, weekend Sat-Sun), the first
    block's edges, and rows no tariff prices."""
    rows = [  # (event id, service, start UTC, quantity, destination, unrated reason)
        ("x-zero", "voice", at(2026, 3, 4, 10), 0, "4930123456", None),
        ("x-block", "voice", at(2026, 3, 4, 10), 60, "4930123456", None),
        ("x-block+1", "voice", at(2026, 3, 4, 10), 61, "4930123456", None),
        # 07:59:30 local: the first block starts off-peak, the seconds after 08:00 are peak
        ("x-into-peak", "voice", at(2026, 3, 4, 6, 59, 30), 400, "4930123456", None),
        # 30 s from 07:59:50 local: billed as the first block, priced where it starts
        ("x-short-across", "voice", at(2026, 3, 4, 6, 59, 50), 30, "4930123456", None),
        # from 07:58:59.5 local: second 60 starts at 07:59:59.5 (off-peak), 61 at 08:00:00.5
        ("x-half-second", "voice", at(2026, 3, 4, 6, 58, 59, 500_000), 62, "4930123456",
         None),
        # Friday 18:58 local into the evening, Friday 23:59 into Saturday (weekend)
        ("x-fri-evening", "voice", at(2026, 3, 6, 17, 58), 300, "4930123456", None),
        ("x-into-weekend", "voice", at(2026, 3, 6, 22, 59), 3 * 3600, "4930123456", None),
        # Sunday night into Monday, across the night summer time starts (29 March)
        ("x-dst-sunday", "voice", at(2026, 3, 29, 0, 30), 4 * 3600, "4930123456", None),
        ("x-monday-08", "voice", at(2026, 3, 30, 6), 90, "4930123456", None),
        ("x-plus", "voice", at(2026, 3, 4, 10), 125, "+4930123456", None),
        ("x-no-rate", "voice", at(2026, 3, 4, 10), 125, "", None),
        ("x-mms", "mms", at(2026, 3, 4, 10), 1, "4930123456", None),
        ("x-internal", "voice", at(2026, 3, 4, 10), 30, "4930123456", "internal"),
        ("x-data-1", "data", at(2026, 3, 4, 10), 1, "internet", None),
        ("x-sms-0", "sms", at(2026, 3, 4, 10), 0, "4930123456", None),
    ]
    return _usage(rows, "edge-1")


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    folder = tmp_path_factory.mktemp("month")
    generate(Params(20_000, buckets=2), folder)
    return folder


@pytest.fixture(scope="module")
def rated(month):
    catalog_path, accounts_path = month / "catalog.yaml", month / "accounts.parquet"
    catalog = load_catalog(catalog_path)
    compiled = compile_catalog(catalog)
    accounts = load_accounts(accounts_path, catalog)
    buckets = [pl.read_parquet(f) for f in usage_files(month)]
    buckets.append(_edge_cases())
    ours = pl.concat([rate_batch(b, catalog, compiled, accounts, "test") for b in buckets])

    usage = pl.concat(buckets)
    con = duckdb.connect()
    con.register("usage_frame", usage.to_arrow())
    con.execute("CREATE TABLE usage AS SELECT * FROM usage_frame")
    oracle_duckdb.rate_table(con, catalog_path, "usage", "rated", accounts=accounts_path)
    by_duckdb = con.sql("SELECT * FROM rated").pl()
    by_polars = oracle_polars.rate(usage, catalog_path, accounts=accounts_path)
    return ours, by_duckdb, by_polars, usage


def _mismatches(ours: pl.DataFrame, theirs: pl.DataFrame) -> pl.DataFrame:
    joined = ours.select(COLUMNS).join(theirs.select(COLUMNS), on="event_id", how="full",
                                       suffix="_oracle", coalesce=True)
    differs = pl.any_horizontal(~pl.col(c).eq_missing(pl.col(f"{c}_oracle"))
                                for c in COLUMNS[1:])
    return joined.filter(differs)


def test_sample_exercises_band_splits(rated):
    ours = rated[0]
    bands = ours.filter(pl.col("spans").is_not_null()).select(
        pl.col("spans").list.eval(pl.element().struct.field("band").n_unique()).list.first())
    assert (bands.to_series() > 1).sum() >= 5
    assert len(ours) > 20_000 and (ours["status"] == "unrated").sum() > 10


def test_oracle_schema_is_ratecycles():
    """The oracles' columns are ratecycle's rated columns, named, typed and ordered alike."""
    assert list(OUTPUT_SCHEMA.items()) == [("event_id", pl.String()), *RATED_COLUMNS.items()]
    # the side-by-side benchmark compares all of them but the run id
    assert COMPARED == tuple(c for c in RATED_COLUMNS if c != "run_id")


@pytest.mark.parametrize("oracle", [1, 2], ids=["duckdb", "polars"])
def test_oracle_agrees_with_ratecycle_on_every_event(rated, oracle):
    ours, theirs = rated[0], rated[oracle]
    assert theirs.schema == pl.Schema(OUTPUT_SCHEMA)
    assert set(COLUMNS) <= set(ours.columns)
    assert len(theirs) == len(ours)
    assert _mismatches(ours, theirs).head(5).to_dicts() == []
    # its own run id, one for the run, not ratecycle's
    assert theirs["run_id"].n_unique() == 1 and theirs["run_id"][0] != ours["run_id"][0]


def test_edge_cases_priced_by_hand(rated):
    """What some edge cases must come out as, worked out by hand."""
    ours = rated[0].filter(pl.col("event_id").str.starts_with("x-"))
    got = {r["event_id"]: r for r in ours.iter_rows(named=True)}
    assert got["x-zero"]["status"] == "rated" and got["x-zero"]["amount"] == 0
    assert got["x-mms"]["reason"] == "no_tariff"
    assert got["x-internal"]["reason"] == "internal"
    assert got["x-no-rate"]["reason"] == "no_rate"
    assert got["x-block"]["billed_quantity"] == got["x-zero"]["billed_quantity"] + 60
    assert got["x-block+1"]["billed_quantity"] == 61
    # x-into-peak: 400 s from 07:59:30 local. The first block (60 s) is priced where it
    # starts, off-peak; every second after it starts at 08:00:30 or later: peak.
    def parts(event: str) -> list[tuple]:
        return [(s["band"], s["slot"], s["billed_quantity"]) for s in got[event]["spans"]]

    assert parts("x-into-peak") == [("offpeak", 0, 60), ("peak", 1, 340)]
    assert parts("x-short-across") == [("offpeak", 0, 60)]
    assert parts("x-half-second") == [("offpeak", 0, 60), ("offpeak", 1, 1), ("peak", 1, 1)]
    # prefix 4930: off-peak 0.0305/min, peak 0.0509/min, connect fee 0.05 at the start;
    # 0.05 + 0.0305 + 0.0305/60 (0.000508333) + 0.0509/60 (0.000848333), each part rounded
    assert got["x-half-second"]["amount"] == Decimal("0.081856666")
    assert got["x-zero"]["spans"] == [] and got["x-mms"]["spans"] is None
    assert got["x-data-1"]["spans"][0]["band"] == "all" and got["x-mms"]["bundles"] == []


def test_sample_exercises_bundles_and_tiers(rated):
    ours = rated[0].filter(pl.col("status") == "rated")
    drawn = ours.filter(pl.col("bundle_quantity") > 0)
    partly = drawn.filter(pl.col("bundle_quantity") < pl.col("billed_quantity"))
    assert len(drawn) > 1000 and len(partly) >= 10
    assert set(drawn["plan_id"]) == {"voice300"}
    # calls the bundle no longer reaches, after it ran out
    assert ours.filter((pl.col("plan_id") == "voice300") & (pl.col("service") == "voice")
                       & (pl.col("bundle_quantity") == 0) & (pl.col("billed_quantity") > 0)
                       ).height > 100
    tiers = ours.filter(pl.col("service") == "data")["tier"].value_counts()
    assert {1, 2, 3} <= set(tiers["tier"])


def test_partly_covered_call_pays_its_uncovered_seconds(rated):
    """A call the bundle covers only in part pays its connect fee and, part by part, the
    seconds past the covered ones (what its spans say, without bundle use)."""
    ours = rated[0]
    partly = ours.filter((pl.col("bundle_quantity") > 0)
                         & (pl.col("bundle_quantity") < pl.col("billed_quantity")))
    for row in partly.head(5).iter_rows(named=True):
        covered, seconds = row["bundle_quantity"], 0
        for span in row["spans"]:
            seconds += span["billed_quantity"]
            assert span["cost"] == 0 or seconds > covered
        assert row["amount"] >= row["connect_fee"]


def test_oracles_agree_on_customers_and_period_edges(month, tmp_path):
    """Two subscribers billed to one customer, events at the edges of local months (the
    first local hour of March is February in UTC; summer and winter time), a bundle used up
    in March and full again in April: every rated column agrees, and the periods and
    bundle draws are what the calendar says."""
    accounts_path = tmp_path / "accounts.parquet"
    pl.DataFrame({"subscriber_id": ["edge-2", "edge-3"], "plan_id": ["voice300", "standard"],
                  "customer_id": ["acme", "acme"]}).write_parquet(accounts_path)
    rows = [
        ("p-march-first-hour", "voice", at(2026, 2, 28, 23, 30), 120, "4930123456", None),
        ("p-march-long", "voice", at(2026, 3, 10, 9), 3 * 3600, "4930123456", None),
        ("p-march-past-bundle", "voice", at(2026, 3, 20, 12), 2 * 3600, "4930123456", None),
        # 23:59:30 local on 31 March into April: billed in March, its start's period
        ("p-march-last", "voice", at(2026, 3, 31, 21, 59, 30), 600, "4930123456", None),
        ("p-april", "voice", at(2026, 3, 31, 22), 400, "4930123456", None),
        # across the night winter time starts (25 October)
        ("p-october-dst", "voice", at(2026, 10, 25, 0, 30), 3 * 3600, "4930123456", None),
        ("p-november-data", "data", at(2026, 10, 31, 23, 30), 5 * 10**8, "internet", None,
         "edge-3"),
        ("p-april-sms", "sms", at(2026, 4, 30, 21, 59), 1, "4930123456", None, "edge-3"),
        ("p-nobody", "sms", at(2026, 4, 2), 1, "4930123456", None, "edge-4"),
    ]
    usage = _usage(rows, "edge-2")
    catalog_path = month / "catalog.yaml"
    catalog = load_catalog(catalog_path)
    ours = rate_batch(usage, catalog, compile_catalog(catalog),
                      load_accounts(accounts_path, catalog), "test")
    con = duckdb.connect()
    con.register("usage", usage.to_arrow())
    oracle_duckdb.rate_table(con, catalog_path, "usage", "rated", accounts=accounts_path)
    for theirs in (con.sql("SELECT * FROM rated").pl(),
                   oracle_polars.rate(usage, catalog_path, accounts=accounts_path)):
        assert theirs.schema == pl.Schema(OUTPUT_SCHEMA)
        assert len(theirs) == len(ours) == len(rows)
        assert _mismatches(ours, theirs).head(5).to_dicts() == []

    got = {r["event_id"]: r for r in ours.iter_rows(named=True)}
    march = (at(2026, 2, 28, 23), at(2026, 3, 31, 22), date(2026, 3, 1), date(2026, 4, 1))
    bounds = ("period_start", "period_end", "cycle_start", "cycle_end")
    for event in ("p-march-first-hour", "p-march-last"):
        assert tuple(got[event][k] for k in bounds) == march
    assert tuple(got["p-october-dst"][k] for k in bounds) == (
        at(2026, 9, 30, 22), at(2026, 10, 31, 23), date(2026, 10, 1), date(2026, 11, 1))
    assert got["p-november-data"]["usage_period_start"] == at(2026, 10, 31, 23)
    assert {r["customer_id"] for r in got.values()} == {"acme", "edge-4"}
    # 300 minutes: 120 + 10,800 s drawn, 7,080 of the next 7,200, then nothing left
    assert got["p-march-past-bundle"]["bundles"] == [
        {"bundle": "300 minutes", "quantity": 18_000 - 120 - 3 * 3600}]
    assert got["p-march-last"]["bundles"] == [] and got["p-march-last"]["amount"] > 0
    assert got["p-april"]["bundle_quantity"] == 400 and got["p-april"]["amount"] == 0
    assert got["p-nobody"]["plan_id"] == "standard" and got["p-nobody"]["tariff"] == (
        "standard/sms")


@pytest.fixture(scope="module")
def bills(rated, month, tmp_path_factory):
    """Bill totals: ratecycle's (bills.duckdb built from its rated events) and the bill
    oracle's over each oracle's events."""
    ours, by_duckdb, by_polars, usage = rated
    catalog_path, accounts_path = month / "catalog.yaml", month / "accounts.parquet"
    catalog = load_catalog(catalog_path)
    root = tmp_path_factory.mktemp("bills")
    ours.write_parquet(root / "rated.parquet")
    build_bills(root, ["rated.parquet"], [], catalog, [],
                accounts=load_accounts(accounts_path, catalog),
                as_of=datetime(2026, 4, 2, tzinfo=UTC))
    with duckdb.connect(str(root / "bills.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        theirs_bills = con.sql("""SELECT customer_id, period_start, subtotal, discount, tax,
                                         total FROM bills""").pl()
    found = [theirs_bills.cast(oracle_bills.BILL_SCHEMA)]
    keys = usage.select("event_id", "subscriber_id", "service")
    for events in (by_duckdb, by_polars):
        con = duckdb.connect()
        con.register("events", events.join(keys, on="event_id").to_arrow())
        found.append(oracle_bills.bill_totals(con, "events", catalog_path, accounts_path))
    return found


@pytest.mark.parametrize("oracle", [1, 2], ids=["duckdb", "polars"])
def test_bill_totals_agree_to_the_cent(bills, oracle):
    ours, theirs = bills[0], bills[oracle]
    assert len(ours) > 90 and (ours["discount"] > 0).sum() > 20 and (ours["tax"] > 0).all()
    joined = ours.join(theirs, on=["customer_id", "period_start"], how="full",
                       suffix="_oracle", coalesce=True)
    differs = pl.any_horizontal(~pl.col(c).eq_missing(pl.col(f"{c}_oracle"))
                                for c in ("subtotal", "discount", "tax", "total"))
    assert joined.filter(differs).head(5).to_dicts() == []


def test_simple_deck_sql_agrees_with_ratecycle(month):
    """The simple deck benchmark's two versions price every call alike (prefix, amount)."""
    from bench.simple_deck import COLUMNS, compared, rate_duckdb, voice_calls, write_tariff

    catalog = load_catalog(write_tariff(month))
    compiled = compile_catalog(catalog)
    calls = pl.concat([*voice_calls(usage_files(month)),
                       _edge_cases().filter(pl.col("service") == "voice")])
    ours = compared(rate_batch(calls, catalog, compiled, None, "test"))
    con = duckdb.connect()
    con.register("calls", calls.to_arrow())
    rate_duckdb(con, "calls", month / "simple" / "deck.csv", "rated")
    theirs = con.sql("SELECT * FROM rated").pl()
    joined = ours.join(theirs, on="event_id", how="full", suffix="_sql", coalesce=True)
    assert len(joined) == len(ours) == len(theirs) > 5_000
    for column in COLUMNS[1:]:
        bad = joined.filter(~pl.col(column).eq_missing(pl.col(f"{column}_sql")))
        assert bad.is_empty(), bad
    assert ours["amount_n"].null_count() >= 2  # no rate, an internal call
    assert ours.filter(pl.col("event_id") == "x-block+1")["amount_n"].item() > 0
