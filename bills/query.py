"""`ratecycle sql`: read-only queries against bills.duckdb."""

from __future__ import annotations

from pathlib import Path

import duckdb

from .errors import QueryError


def run_query(db: str | Path, query: str, *, output: str | Path | None = None,
              fmt: str = "table", max_rows: int = 100) -> str | None:
    """Run ``query`` on a read-only connection. With ``fmt`` csv or parquet, write the
    result to ``output``; with ``table``, return the result as a printable table."""
    db = Path(db)
    if not db.is_file():
        raise QueryError(f"{db}: no such database; run `ratecycle run` or `ratecycle demo` first")
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        raise QueryError(f"{db}: cannot open: {exc}") from None
    try:
        rel = con.sql(query)
        if rel is None:
            return ""
        if fmt == "table":
            return _table(rel, max_rows)
        if output is None:
            raise QueryError(f"--format {fmt} needs --output FILE")
        if fmt == "csv":
            rel.write_csv(str(output))
        elif fmt == "parquet":
            rel.write_parquet(str(output))
        else:
            raise QueryError(f"unknown format {fmt!r}; use table, csv or parquet")
        return None
    except duckdb.Error as exc:
        raise QueryError(str(exc).strip()) from None
    finally:
        con.close()


def _table(rel, max_rows: int) -> str:
    import polars as pl

    frame = rel.limit(max_rows + 1).pl()
    more = len(frame) > max_rows
    with pl.Config(tbl_rows=max_rows, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=False):
        text = str(frame.head(max_rows))
    if more:
        text += f"\n(first {max_rows} rows; use --max-rows or --format csv for more)"
    return text
