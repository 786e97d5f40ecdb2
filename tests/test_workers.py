"""Rating in a spawn pool gives exactly what rating in process gives."""

from __future__ import annotations

import duckdb
import polars as pl

from ratecycle.demo import run_demo


def _tables(out) -> dict[str, list]:
    con = duckdb.connect(str(out / "bills.duckdb"), read_only=True)
    try:
        return {name: con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
                for name in ("bills", "bill_lines", "bundle_balances")}
    finally:
        con.close()


def test_two_workers_rate_and_bill_exactly_as_one(tmp_path):
    one = run_demo(tmp_path / "one", subscribers=300, events=6000, workers=1, quiet=True)
    two = run_demo(tmp_path / "two", subscribers=300, events=6000, workers=2, quiet=True)
    assert one.accounting() == two.accounting()
    assert _tables(tmp_path / "one") == _tables(tmp_path / "two")
    rated = [pl.read_parquet(p / "runs" / "*" / "rated" / "**" / "*.parquet").drop("run_id")
             .sort("event_id") for p in (tmp_path / "one", tmp_path / "two")]
    assert rated[0].equals(rated[1])
    assert not list((tmp_path / "two").rglob("*.pickle"))  # the prepared catalog is removed


def test_two_tasks_at_a_time_on_threads_rate_exactly_as_one_at_a_time(tmp_path, monkeypatch):
    import ratecycle.job as job

    threads = run_demo(tmp_path / "threads", subscribers=300, events=6000, quiet=True)
    monkeypatch.setattr(job, "threads_safe", lambda: False)  # rate one, write it meanwhile
    serial = run_demo(tmp_path / "serial", subscribers=300, events=6000, quiet=True)
    assert threads.accounting() == serial.accounting()
    assert _tables(tmp_path / "threads") == _tables(tmp_path / "serial")
    rated = [pl.read_parquet(p / "runs" / "*" / "rated" / "**" / "*.parquet").drop("run_id")
             .sort("event_id") for p in (tmp_path / "threads", tmp_path / "serial")]
    assert rated[0].equals(rated[1])
