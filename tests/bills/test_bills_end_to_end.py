"""A tiny month end to end through the command line: `rate`, `run`, then `sql` on the bills.

The numbers are worked out by hand:
  S1 voice to UK (0.50/min billed per second): 61 s = 0.508333333, 60 s = 0.50
     -> line 1.008333333, rounded once to 1.01
  S1 three SMS at 0.005 -> line 0.015, rounded once (half-up) to 0.02
     (rounding each event to cents first would give 0.01 + 0.01 + 0.01 = 0.03)
  S1 subtotal 1.03, VAT 20% on the subtotal 0.206 -> 0.21 (per-line VAT would be
     0.00 + 0.20), total 1.24
  S1 call to France has no rate: unrated `no_rate`, on no bill line
  S2 one SMS 0.005 -> 0.01, VAT 0.002 -> 0.00, total 0.01
"""

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from ratecycle.cli import main

CATALOG = """\
catalog: 1
currency: EUR
decks:
  intl: {file: intl.csv}
plans:
  - id: basic
    default: true
    taxes: [{name: VAT, rate: "0.20"}]
    charges:
      - {service: voice, deck: intl, per: minute, increments: 1/1}
      - {service: sms, rate: "0.005", per: message}
"""
DECK = "prefix,destination,rate\n44,UK,0.50\n"
USAGE = """\
event_id,subscriber_id,service,started_at,quantity,destination
e1,S1,voice,2026-03-02T10:00:00Z,61,447700900001
e2,S1,voice,2026-03-02T11:00:00Z,60,441632960000
e3,S1,sms,2026-03-03T09:00:00Z,1,447700900002
e4,S1,sms,2026-03-03T09:01:00Z,1,447700900002
e5,S1,sms,2026-03-03T09:02:00Z,1,447700900002
e6,S1,voice,2026-03-04T09:02:00Z,30,3312345678
e7,S2,sms,2026-03-05T12:00:00Z,1,447700900003
"""
EXPECTED_AMOUNTS = {
    "e1": Decimal("0.508333333"), "e2": Decimal("0.50"), "e3": Decimal("0.005"),
    "e4": Decimal("0.005"), "e5": Decimal("0.005"), "e6": None, "e7": Decimal("0.005"),
}


def write_inputs(folder: Path) -> Path:
    (folder / "catalog.yaml").write_text(CATALOG)
    (folder / "intl.csv").write_text(DECK)
    (folder / "usage.csv").write_text(USAGE)
    return folder


def sql_rows(db: Path, query: str, folder: Path) -> list[dict]:
    """Run a query through `ratecycle sql --format csv --output` and read the CSV back."""
    out = folder / "result.csv"
    assert main(["sql", "--db", str(db), query, "--format", "csv", "--output", str(out)]) == 0
    with out.open(newline="") as handle:
        return list(csv.DictReader(handle))


# --- `ratecycle rate` ------------------------------------------------------------------------

def test_rate_to_one_parquet_file(tmp_path, capsys):
    write_inputs(tmp_path)
    out = tmp_path / "rated.parquet"
    assert main(["rate", "--catalog", str(tmp_path / "catalog.yaml"),
                 "--usage", str(tmp_path / "usage.csv"), "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "balanced: read = rated + unrated + quarantined: True" in summary
    rated = pl.read_parquet(out).sort("event_id")
    assert dict(zip(rated["event_id"], rated["amount"], strict=True)) == EXPECTED_AMOUNTS
    assert rated.filter(pl.col("event_id") == "e6").select("status", "reason").row(0) == (
        "unrated", "no_rate")
    assert rated["billed_quantity"].to_list() == [61, 60, 1, 1, 1, 0, 1]
    assert rated["run_id"].n_unique() == 1
    assert set(rated["cycle_start"].to_list()) == {datetime(2026, 3, 1).date()}


def test_rate_to_a_folder_gives_the_same_rows(tmp_path):
    write_inputs(tmp_path)
    args = ["rate", "--catalog", str(tmp_path / "catalog.yaml"), "--usage",
            str(tmp_path / "usage.csv"), "--as-of", "2026-04-01T06:00:00Z"]
    assert main([*args, "--out", str(tmp_path / "rated.parquet")]) == 0
    assert main([*args, "--out", str(tmp_path / "rated")]) == 0
    parts = sorted((tmp_path / "rated").glob("bucket=*/part-0.parquet"))
    assert parts
    folder = pl.concat([pl.read_parquet(p) for p in parts]).sort("event_id")
    single = pl.read_parquet(tmp_path / "rated.parquet").sort("event_id")
    assert folder.equals(single)
    assert single["ingested_at"].unique().to_list() == [datetime(2026, 4, 1, 6, tzinfo=UTC)]


def test_rate_quarantines_bad_rows_beside_the_output(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "usage.csv").write_text(
        USAGE + "e8,S1,sms,2026-03-05 12:00:00,1,44\n"  # no UTC offset
        "e1,S1,voice,2026-03-02T10:00:00Z,61,447700900001\n"  # repeated event
    )
    out = tmp_path / "rated.parquet"
    assert main(["rate", "--catalog", str(tmp_path / "catalog.yaml"),
                 "--usage", str(tmp_path / "usage.csv"), "--out", str(out)]) == 0
    quarantine = pl.read_parquet(tmp_path / "rated.quarantine.parquet").sort("source_row")
    assert quarantine.select("source_row", "reason").rows() == [(9, "bad_field"),
                                                                (10, "duplicate")]
    assert len(pl.read_parquet(out)) == 7


def test_unknown_columns_in_a_usage_csv_are_refused_naming_the_file(tmp_path, capsys):
    write_inputs(tmp_path)
    bad = tmp_path / "usage-extra.csv"
    bad.write_text(USAGE.replace("destination\n", "destination,colour\n", 1))
    code = main(["rate", "--catalog", str(tmp_path / "catalog.yaml"), "--usage", str(bad),
                 "--out", str(tmp_path / "rated.parquet")])
    err = capsys.readouterr().err
    assert code != 0
    assert str(bad) in err
    assert "unknown columns ['colour']" in err
    assert "Traceback" not in err
    assert not (tmp_path / "rated.parquet").exists()


# --- `ratecycle run` and the bills ------------------------------------------------------------

@pytest.fixture(scope="module")
def bills(tmp_path_factory) -> Path:
    """`ratecycle run --format parquet` on the month; returns bills.duckdb."""
    folder = write_inputs(tmp_path_factory.mktemp("month"))
    usage = pl.read_csv(folder / "usage.csv", schema_overrides={"destination": pl.String})
    usage.with_columns(pl.col("started_at").str.to_datetime(time_zone="UTC")).write_parquet(
        folder / "usage.parquet")
    assert main(["run", "--format", "parquet", str(folder / "usage.parquet"),
                 "--catalog", str(folder / "catalog.yaml"), "--out", str(folder / "out"),
                 "--as-of", "2026-04-01T06:00:00Z"]) == 0
    return folder / "out" / "bills.duckdb"


def test_bill_lines_are_rounded_once_per_line(bills, tmp_path):
    rows = sql_rows(bills, """
        SELECT subscriber_id, service, destination_name, events, amount_exact, amount
        FROM bill_lines ORDER BY subscriber_id, service""", tmp_path)
    got = [(r["subscriber_id"], r["service"], r["destination_name"], int(r["events"]),
            Decimal(r["amount_exact"]), Decimal(r["amount"])) for r in rows]
    assert got == [
        ("S1", "sms", "sms", 3, Decimal("0.015"), Decimal("0.02")),
        ("S1", "voice", "UK", 2, Decimal("1.008333333"), Decimal("1.01")),
        ("S2", "sms", "sms", 1, Decimal("0.005"), Decimal("0.01")),
    ]


def test_tax_is_on_the_subtotal_and_total_is_lines_plus_taxes(bills, tmp_path):
    rows = sql_rows(bills, """
        SELECT customer_id AS subscriber_id, subtotal, tax, total FROM bills ORDER BY 1""",
        tmp_path)
    got = [(r["subscriber_id"], Decimal(r["subtotal"]), Decimal(r["tax"]), Decimal(r["total"]))
           for r in rows]
    assert got == [
        ("S1", Decimal("1.03"), Decimal("0.21"), Decimal("1.24")),
        ("S2", Decimal("0.01"), Decimal("0.00"), Decimal("0.01")),
    ]
    taxes = sql_rows(bills, """
        SELECT customer_id AS subscriber_id, tax_name, tax_rate, base, tax FROM bill_taxes
        ORDER BY subscriber_id""", tmp_path)
    assert [(t["subscriber_id"], t["tax_name"], Decimal(t["tax_rate"]), Decimal(t["base"]),
             Decimal(t["tax"])) for t in taxes] == [
        ("S1", "VAT", Decimal("0.2"), Decimal("1.03"), Decimal("0.21")),
        ("S2", "VAT", Decimal("0.2"), Decimal("0.01"), Decimal("0.00")),
    ]


def test_every_bill_total_is_the_exact_sum_of_its_lines_and_taxes(bills, tmp_path):
    rows = sql_rows(bills, """
        SELECT b.customer_id, b.total,
               (SELECT sum(l.amount - l.discount) FROM bill_lines l
                 WHERE l.customer_id = b.customer_id AND l.period_start = b.period_start)
             + (SELECT coalesce(sum(t.tax), 0) FROM bill_taxes t
                 WHERE t.customer_id = b.customer_id AND t.period_start = b.period_start
                   AND NOT t.inclusive)
               AS recomputed
        FROM bills b ORDER BY 1""", tmp_path)
    assert len(rows) == 2
    for r in rows:
        assert Decimal(r["total"]) == Decimal(r["recomputed"])


def test_rated_usage_view_and_row_accounting(bills, tmp_path):
    events = sql_rows(bills, "SELECT event_id, status, amount FROM rated_usage ORDER BY 1",
                      tmp_path)
    assert {e["event_id"]: (Decimal(e["amount"]) if e["amount"] else None)
            for e in events} == EXPECTED_AMOUNTS
    accounting = sql_rows(bills, "SELECT outcome, reason, rows FROM row_accounting ORDER BY 1",
                          tmp_path)
    assert [(a["outcome"], a["reason"], int(a["rows"])) for a in accounting] == [
        ("rated", "", 6), ("read", "", 7), ("unrated", "no_rate", 1)]


def test_sql_prints_a_table(bills, capsys):
    assert main(["sql", "--db", str(bills),
                 "SELECT customer_id, total FROM bills ORDER BY 1"]) == 0
    out = capsys.readouterr().out
    assert "customer_id" in out and "total" in out
    assert "1.240000000" in out
    assert "0.010000000" in out


def test_sql_writes_csv_to_the_output_file(bills, tmp_path, capsys):
    out = tmp_path / "lines.csv"
    assert main(["sql", "--db", str(bills), "SELECT service, amount FROM bill_lines "
                 "WHERE subscriber_id = 'S1' ORDER BY service", "--format", "csv",
                 "--output", str(out)]) == 0
    assert out.read_text().splitlines() == ["service,amount", "sms,0.020000000",
                                            "voice,1.010000000"]
    assert f"wrote {out}" in capsys.readouterr().err


def test_sql_is_read_only(bills, tmp_path, capsys):
    code = main(["sql", "--db", str(bills), "INSERT INTO bills SELECT * FROM bills"])
    err = capsys.readouterr().err
    assert code != 0
    assert "read-only" in err
    assert "Traceback" not in err
    assert sql_rows(bills, "SELECT count(*) AS n FROM bills", tmp_path) == [{"n": "2"}]


def test_sql_reports_a_bad_query_and_a_missing_database(bills, tmp_path, capsys):
    assert main(["sql", "--db", str(bills), "SELECT * FROM no_such_table"]) == 1
    assert "no_such_table" in capsys.readouterr().err
    assert main(["sql", "--db", str(tmp_path / "none.duckdb"), "SELECT 1"]) == 1
    assert "no such database" in capsys.readouterr().err


def test_a_rerun_of_the_same_inputs_gives_the_same_run_id(bills, tmp_path):
    folder = bills.parent.parent
    first = sql_rows(bills, "SELECT run_id FROM runs", tmp_path)
    assert main(["run", "--format", "parquet", str(folder / "usage.parquet"),
                 "--catalog", str(folder / "catalog.yaml"), "--out", str(tmp_path / "again"),
                 "--as-of", "2026-04-01T06:00:00Z"]) == 0
    again = sql_rows(tmp_path / "again" / "bills.duckdb", "SELECT run_id FROM runs", tmp_path)
    assert again == first


def test_the_database_holds_exactly_the_documented_tables_and_views(bills):
    import duckdb

    from bills import TABLES, VIEWS

    con = duckdb.connect(str(bills), read_only=True)
    try:
        found = {name: kind for name, kind in con.execute(
            "SELECT table_name, table_type FROM information_schema.tables").fetchall()}
    finally:
        con.close()
    assert {n for n, k in found.items() if k == "BASE TABLE"} == set(TABLES)
    assert {n for n, k in found.items() if k == "VIEW"} == set(VIEWS)


def test_a_killed_run_leaves_nothing_behind_after_the_next(bills, tmp_path):
    """A killed run leaves its half-written database and the folder DuckDB spilled to; the
    next run removes both and writes the same bills."""
    folder = bills.parent.parent
    out = tmp_path / "again"
    assert main(["run", "--format", "parquet", str(folder / "usage.parquet"),
                 "--catalog", str(folder / "catalog.yaml"), "--out", str(out),
                 "--as-of", "2026-04-01T06:00:00Z"]) == 0
    (out / ".bills.duckdb.999.tmp").write_bytes(b"half written")
    (out / ".bills.duckdb.999.tmp.tmp").mkdir()
    (out / ".bills.duckdb.999.tmp.tmp" / "duckdb_temp_storage-0.tmp").write_bytes(b"x")
    assert main(["run", "--format", "parquet", str(folder / "usage.parquet"),
                 "--catalog", str(folder / "catalog.yaml"), "--out", str(out),
                 "--as-of", "2026-04-01T06:00:00Z"]) == 0
    assert not list(out.glob(".bills.duckdb.*"))
    assert sql_rows(out / "bills.duckdb", "SELECT total FROM bills ORDER BY 1", tmp_path) == \
        sql_rows(bills, "SELECT total FROM bills ORDER BY 1", tmp_path)


def test_the_run_reports_the_bills_as_they_are_priced(bills, tmp_path, capsys):
    folder = bills.parent.parent
    assert main(["run", "--format", "parquet", str(folder / "usage.parquet"),
                 "--catalog", str(folder / "catalog.yaml"), "--out", str(tmp_path / "again"),
                 "--as-of", "2026-04-01T06:00:00Z"]) == 0
    err = capsys.readouterr().err
    priced = sql_rows(bills, "SELECT count(*) AS n, sum(lines) AS lines FROM bills", tmp_path)[0]
    assert "building bills" in err
    assert f"priced {int(priced['n']):,} bills, {int(priced['lines']):,} lines so far" in err
