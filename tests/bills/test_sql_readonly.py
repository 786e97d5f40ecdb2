"""`ratecycle sql` reads bills.duckdb and the Parquet files under its folder, and nothing
else: no file is written, read, installed or attached, no setting changed."""

from pathlib import Path

import duckdb
import polars as pl
import pytest

from bills import QueryError, run_query
from ratecycle.cli import main

CATALOG = """\
catalog: 1
currency: EUR
plans:
  - id: basic
    default: true
    charges: [{service: sms, rate: "0.05", per: message}]
"""
USAGE = """\
event_id,subscriber_id,service,started_at,quantity,destination
e1,S1,sms,2026-03-03T09:00:00Z,1,447700900002
e2,S2,sms,2026-03-03T09:01:00Z,1,447700900002
"""


@pytest.fixture(scope="module")
def bills(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("month")
    (folder / "catalog.yaml").write_text(CATALOG)
    (folder / "usage.csv").write_text(USAGE)
    usage = pl.read_csv(folder / "usage.csv", schema_overrides={"destination": pl.String})
    usage.with_columns(pl.col("started_at").str.to_datetime(time_zone="UTC")).write_parquet(
        folder / "usage.parquet")
    assert main(["run", "--format", "parquet", str(folder / "usage.parquet"),
                 "--catalog", str(folder / "catalog.yaml"), "--out", str(folder / "out"),
                 "--as-of", "2026-04-01T06:00:00Z"]) == 0
    return folder / "out" / "bills.duckdb"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """The working folder, away from the database."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def listing(*folders: Path) -> set[Path]:
    return {p for folder in folders for p in folder.rglob("*")}


@pytest.mark.parametrize(("query", "says"), [
    ("COPY (SELECT 1) TO 'x.parquet'", "not COPY"),
    ("COPY bills TO 'x.csv'", "not COPY"),
    ("COPY bills TO '{folder}/x.csv'", "not COPY"),
    ("EXPORT DATABASE 'dump'", "not EXPORT"),
    ("INSTALL httpfs", "read-only"),
    ("LOAD httpfs", "read-only"),
    ("ATTACH 'other.duckdb' AS other", "not ATTACH"),
    ("SET threads = 1", "not SET"),
    ("SET enable_external_access = true", "not SET"),
    ("INSERT INTO bills SELECT * FROM bills", "read-only"),
    ("CREATE TABLE t AS SELECT 1", "read-only"),
    ("SELECT * FROM read_text('{outside}')", "Permission Error"),
    ("SELECT * FROM read_csv('{outside}')", "Permission Error"),
    ("SELECT * FROM 'https://example.invalid/x.csv'", "Permission Error"),
])
def test_statements_that_touch_files_or_settings_are_refused(query, says, bills, elsewhere,
                                                              capsys):
    outside = elsewhere / "secret.txt"
    outside.write_text("a\n1\n")
    before = listing(elsewhere, bills.parent)
    code = main(["sql", "--db", str(bills),
                 query.format(folder=bills.parent, outside=outside)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("ratecycle sql: error: ") and says in err
    assert "Traceback" not in err
    assert listing(elsewhere, bills.parent) == before


def test_copy_and_export_point_to_output(bills, elsewhere):
    with pytest.raises(QueryError, match="--format csv or parquet with --output FILE"):
        run_query(bills, "COPY bills TO 'x.csv'")


@pytest.mark.parametrize(("query", "says"), [
    ("SELECT 1; SELECT 2", "one query at a time"),
    ("", "the query is empty"),
    ("  -- just a comment", "the query is empty"),
    ("SELEC 1", "syntax error"),
])
def test_one_query_at_a_time(query, says, bills, capsys):
    assert main(["sql", "--db", str(bills), query]) == 1
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_reading_queries_work(bills, elsewhere, capsys):
    for query in ("SELECT count(*) AS n FROM rated_usage", "SELECT count(*) AS n FROM quarantine",
                  "DESCRIBE bills", "SHOW TABLES", "SELECT 1;",
                  "WITH t AS (SELECT 1 AS n) SELECT * FROM t"):
        assert main(["sql", "--db", str(bills), query]) == 0, query
    out = capsys.readouterr().out
    assert "customer_id" in out


def test_views_relative_to_the_database_folder_resolve_there(tmp_path, elsewhere, capsys):
    """Views may name their files relative to the database's folder, whatever the working
    folder is; a folder of the same name in the working folder is not read."""
    db_folder = tmp_path / "night"
    (db_folder / "rated" / "bucket=000").mkdir(parents=True)
    pl.DataFrame({"event_id": ["e1", "e2"]}).write_parquet(
        db_folder / "rated" / "bucket=000" / "part-0.parquet")
    (elsewhere / "rated" / "bucket=000").mkdir(parents=True)
    pl.DataFrame({"event_id": ["decoy"]}).write_parquet(
        elsewhere / "rated" / "bucket=000" / "part-0.parquet")
    con = duckdb.connect(str(db_folder / "bills.duckdb"))
    con.execute("CREATE VIEW rated_usage AS "
                "SELECT * FROM read_parquet('rated/bucket=*/part-0.parquet')")
    con.close()
    out = elsewhere / "events.csv"
    assert main(["sql", "--db", str(db_folder / "bills.duckdb"),
                 "SELECT event_id FROM rated_usage ORDER BY 1", "--output", str(out)]) == 0
    assert out.read_text().splitlines() == ["event_id", "e1", "e2"]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_output_format_follows_the_suffix(suffix, bills, elsewhere, capsys):
    out = elsewhere / f"bills.{suffix}"
    assert main(["sql", "--db", str(bills), "SELECT customer_id, total FROM bills ORDER BY 1",
                 "--output", str(out)]) == 0
    assert capsys.readouterr().out == ""
    frame = pl.read_csv(out) if suffix == "csv" else pl.read_parquet(out)
    assert frame["customer_id"].to_list() == ["S1", "S2"]


def test_an_output_suffix_that_says_no_format_is_refused(bills, elsewhere, capsys):
    assert main(["sql", "--db", str(bills), "SELECT 1", "--output", "result.txt"]) == 1
    assert "name it .csv or .parquet" in capsys.readouterr().err
    assert not (elsewhere / "result.txt").exists()


def test_types_polars_cannot_hold_still_print_and_save(bills, elsewhere, capsys):
    query = "SELECT INTERVAL 1 DAY AS i, 2 AS n, union_value(a := 1) AS u"
    assert main(["sql", "--db", str(bills), query]) == 0
    out = capsys.readouterr().out
    assert "1 day" in out
    assert main(["sql", "--db", str(bills), query, "--output", "r.csv"]) == 0
    assert (elsewhere / "r.csv").read_text().splitlines() == ["i,n,u", "1 day,2,1"]


def test_a_wide_table_keeps_its_columns_readable(bills, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "100")  # the terminal's width
    assert main(["sql", "--db", str(bills), "SELECT * FROM rated_usage LIMIT 1"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[1]
    for column in ("event_id", "subscriber_id", "destination_name", "billed_quantity"):
        assert f" {column} " in header  # whole names, not squeezed to a few letters
    assert "columns" in out.splitlines()[-1]


def test_csv_without_output_prints_what_output_would_write(bills, elsewhere, capsys):
    query = "SELECT customer_id, total, period_start FROM bills ORDER BY 1"
    assert main(["sql", "--db", str(bills), query, "--output", "bills.csv"]) == 0
    capsys.readouterr()
    assert main(["sql", "--db", str(bills), query, "--format", "csv"]) == 0
    printed = capsys.readouterr()
    assert printed.out == (elsewhere / "bills.csv").read_text()
    assert printed.out.splitlines()[0] == "customer_id,total,period_start"
    assert not list(elsewhere.glob("*.csv"))[1:]  # nothing written but the --output file


def test_parquet_without_output_is_refused(bills, elsewhere, capsys):
    assert main(["sql", "--db", str(bills), "SELECT 1", "--format", "parquet"]) == 1
    assert "add --output FILE.parquet" in capsys.readouterr().err


def test_the_output_folder_names_its_database(bills, elsewhere, capsys):
    assert main(["sql", "--db", str(bills.parent), "SELECT count(*) AS n FROM rated_usage"]) == 0
    assert "2" in capsys.readouterr().out


def test_a_file_that_is_not_a_database_is_named(bills, elsewhere, capsys):
    assert main(["sql", "--db", str(bills.parent / "accounting.json"), "SELECT 1"]) == 1
    err = capsys.readouterr().err
    assert "accounting.json is not a DuckDB database" in err and "Traceback" not in err


def test_a_database_without_bills_is_named(elsewhere, capsys):
    duckdb.connect(str(elsewhere / "other.duckdb")).close()
    assert main(["sql", "--db", "other.duckdb", "SELECT * FROM bills"]) == 1
    err = capsys.readouterr().err
    assert "other.duckdb holds no bills" in err and "Traceback" not in err
