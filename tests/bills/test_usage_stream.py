"""The usage lines come from DuckDB already in the bill lines' order, and are cut into
parts of whole customers: the database's order must be the one Polars would sort to, or
line numbers would change with the engine that sorted them."""

from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import polars as pl
import pytest

import bills.build
from bills.build import _customer_parts, _usage_lines
from bills.schema import LINE_ORDER, USAGE_LINE_SCHEMA

# strings that order differently by bytes, by case, by accent or by length
AWKWARD = ["a", "B", "b", "ab", "a b", "é", "e", "Z", "", None, "ß", "a\u0301"]


def rated_rows() -> pl.DataFrame:
    rows = []
    for i, customer in enumerate(AWKWARD):
        for j, other in enumerate(AWKWARD):
            rows.append({
                "status": "rated", "customer_id": customer,
                "period_start": datetime(2026, 3, 1, tzinfo=UTC),
                "period_end": datetime(2026, 4, 1, tzinfo=UTC),
                "cycle_start": date(2026, 3, 1), "cycle_end": date(2026, 3, 31),
                "currency": "EUR", "subscriber_id": other, "plan_id": AWKWARD[(i + j) % 12],
                "service": AWKWARD[j % 3], "destination_name": AWKWARD[(i * j) % 12],
                "late": bool(j % 2), "quantity": j, "billed_quantity": j,
                "amount": Decimal(i * j) / 7})
    return pl.DataFrame(rows).with_columns(pl.col("amount").cast(pl.Decimal(38, 9)))


def test_database_order_is_the_polars_sort():
    con = duckdb.connect()
    con.register("rated_frame", rated_rows().to_arrow())
    con.execute("CREATE VIEW rated_usage AS SELECT * FROM rated_frame")
    streamed = pl.concat([pl.from_arrow(b) for b in _usage_lines(con, ["rated.parquet"])])
    streamed = streamed.cast(USAGE_LINE_SCHEMA)
    assert len(streamed) == len(AWKWARD) ** 2
    resorted = streamed.with_columns(fee=pl.lit(None, pl.Int64),
                                     fee_start=pl.lit(None, pl.Datetime("us", "UTC")))\
        .sort(*LINE_ORDER, nulls_last=True, maintain_order=True).drop("fee", "fee_start")
    assert streamed.equals(resorted)


def test_unknown_lateness_is_usage_like_on_time():
    con = duckdb.connect()
    rows = rated_rows().head(1)
    con.register("rated_frame", pl.concat([rows.with_columns(late=pl.lit(v))
                                           for v in (False, None, True)]).to_arrow())
    con.execute("CREATE VIEW rated_usage AS SELECT * FROM rated_frame")
    lines = pl.concat([pl.from_arrow(b) for b in _usage_lines(con, ["rated.parquet"])])
    assert lines.select("line_type", "events").rows() == [("late_usage", 1), ("usage", 2)]


@pytest.mark.parametrize("per_part", [1, 3, 10, 1000])
def test_parts_hold_whole_customers(monkeypatch, per_part):
    monkeypatch.setattr(bills.build, "LINES_PER_PART", per_part)
    customers = ["a"] * 7 + ["b"] + ["c"] * 2 + ["d"] * 12 + [None] * 3
    lines = pl.DataFrame({"customer_id": customers, "n": range(len(customers))})
    batches = lines.to_arrow().to_batches(max_chunksize=4)
    parts, last = zip(*_customer_parts(batches), strict=True)
    assert last == (False,) * (len(parts) - 1) + (True,)
    assert pl.concat(parts).equals(lines)
    seen = [set(p["customer_id"].to_list()) for p in parts]
    for k, part in enumerate(parts[:-1]):  # every part but the last is at least full
        assert len(part) >= per_part
        assert not seen[k] & set().union(*seen[k + 1:]), "a customer in two parts"


def test_no_usage_gives_one_empty_part():
    ((part, last),) = _customer_parts([])
    assert last
    assert part.is_empty() and part.schema == pl.Schema(USAGE_LINE_SCHEMA)
