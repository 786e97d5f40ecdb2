"""`ratecycle sql`: read-only queries against bills.duckdb.

The query runs on a connection that can read the database and the Parquet files under the
database's folder (the `rated_usage` and `quarantine` views) and nothing else: no file
writes (COPY, EXPORT), no other files, no extensions, no settings, one SELECT-like
statement. A result saved with ``output`` is written by a second, in-memory connection
that sees only the result rows and the file the user named.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb

from .errors import QueryError

# Statements that only read; DESCRIBE, SHOW, SUMMARIZE, FROM and WITH parse as SELECT.
_READ_STATEMENTS = ("SELECT", "EXPLAIN")
# Column types Polars cannot hold; the table shows them as DuckDB's text.
_TEXT_TYPES = re.compile(r"INTERVAL|UNION|TIME WITH TIME ZONE|BIGNUM|VARINT")


def run_query(db: str | Path, query: str, *, output: str | Path | None = None,
              fmt: str = "table", max_rows: int = 100) -> str | None:
    """Run ``query`` on a read-only connection. With ``fmt`` csv or parquet, write the
    result to ``output``; with ``table``, return the result as a printable table."""
    db = _database(Path(db))
    if fmt not in ("table", "csv", "parquet"):
        raise QueryError(f"unknown format {fmt!r}; use table, csv or parquet")
    if fmt != "table" and output is None:
        raise QueryError(f"--format {fmt} needs --output FILE")
    if output is not None and Path(output).resolve() == db.resolve():
        raise QueryError(f"--output {output} is the database itself; choose another file")
    _check_statement(query)
    con = _connect(db)
    try:
        rel = con.sql(query)
        if rel is None:
            return ""
        if fmt == "table":
            return _table(rel, max_rows)
        _write(rel, Path(output), fmt)
        return None
    except duckdb.Error as exc:
        hint = ""
        if isinstance(exc, duckdb.CatalogException) and not con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'bills'").fetchall()[0][0]:
            hint = (f"\n{db} holds no bills: it is a DuckDB database that `ratecycle run` did "
                    "not write; give the bills.duckdb of a run's --out")
        raise QueryError(str(exc).strip() + hint) from None
    finally:
        con.close()


def _database(db: Path) -> Path:
    """The database file ``db`` names: itself, or the bills.duckdb of an output folder."""
    if db.is_dir() and (db / "bills.duckdb").exists():
        db = db / "bills.duckdb"
    if not db.is_file():
        raise QueryError(f"{db}: no such database; run `ratecycle run` or `ratecycle demo` first")
    with db.open("rb") as head:
        if head.read(12)[8:] != b"DUCK":  # DuckDB's magic bytes
            raise QueryError(f"{db} is not a DuckDB database; give the bills.duckdb that "
                             "`ratecycle run` wrote (or its output folder)")
    return db


def _check_statement(query: str) -> None:
    """One statement that only reads; the connection refuses the rest too, this says why."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryError(str(exc).strip()) from None
    if not statements:
        raise QueryError("the query is empty; give one SELECT statement")
    if len(statements) > 1:
        raise QueryError(f"the query has {len(statements)} statements; ratecycle sql runs one "
                         "query at a time")
    kind = statements[0].type.name
    if kind not in _READ_STATEMENTS:
        hint = ("; to save a result use --format csv or parquet with --output FILE"
                if kind in ("COPY", "EXPORT") else "")
        raise QueryError(f"ratecycle sql is read-only and runs SELECT queries (also WITH, FROM, "
                         f"DESCRIBE, SHOW, SUMMARIZE, EXPLAIN), not {kind} statements{hint}")


def _connect(db: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection locked to the database's folder.

    The views name their Parquet files either absolutely or relative to the database's
    folder (``rated/...``, found through file_search_path); DuckDB checks the path as
    written, so both forms are allowed. Settings are locked once made.
    """
    folder = db.resolve().parent
    try:
        con = duckdb.connect(str(db), read_only=True, config={
            "file_search_path": str(folder),
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        })
    except duckdb.Error as exc:
        raise QueryError(f"{db}: cannot open: {exc}") from None
    try:
        con.execute("SET allowed_directories = ?",
                    [[f"{folder}/", "runs/", "rated/", "quarantine/"]])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error:
        con.close()
        raise
    return con


def _write(rel: duckdb.DuckDBPyRelation, output: Path, fmt: str) -> None:
    writer = duckdb.connect()
    try:
        result = writer.from_arrow(rel.arrow())
        if fmt == "csv":
            result.write_csv(str(output))
        else:
            result.write_parquet(str(output))
    finally:
        writer.close()


def _table(rel: duckdb.DuckDBPyRelation, max_rows: int) -> str:
    import polars as pl

    if any(_TEXT_TYPES.search(str(kind)) for kind in rel.types):
        # By position (#1): a result may have two columns of the same name.
        rel = rel.project(", ".join(
            (f"CAST(#{i} AS VARCHAR)" if _TEXT_TYPES.search(str(kind)) else f"#{i}")
            + f" AS {_quoted(name)}"
            for i, (name, kind) in enumerate(zip(rel.columns, rel.types, strict=True), 1)))
    frame = rel.limit(max_rows + 1).pl()
    more = len(frame) > max_rows
    # As wide as the columns need (65535 is Polars' limit): squeezed into a terminal's
    # width, a table of many columns becomes a few letters per column.
    with pl.Config(tbl_rows=max_rows, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=65535,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=False):
        text = str(frame.head(max_rows))
    notes = []
    if more:
        notes.append(f"first {max_rows} rows; use --max-rows or --format csv for more")
    width = max(len(line) for line in text.splitlines())
    if width > shutil.get_terminal_size().columns:
        notes.append(f"{frame.width} columns, {width} characters wide; select fewer columns, "
                     "page with `less -S`, or use --format csv")
    return text + "".join(f"\n({note})" for note in notes)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
