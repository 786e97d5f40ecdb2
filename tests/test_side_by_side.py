"""The side-by-side script: it runs a measurement in a child process and judges issue 5's
targets from what the records hold, never from a record the oracles wrote less for."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is a folder of scripts beside the packages
    sys.path.insert(0, str(ROOT))

from bench import side_by_side  # noqa: E402
from bench.generate import Params, generate  # noqa: E402


def _row(kind: str, median_s: float, peak_mib: int = 1000, events: int = 10_000_000) -> dict:
    return {"kind": kind, "median_s": median_s, "peak_mib": peak_mib,
            "events_per_s": round(events / median_s), "ratio_to_floor": median_s / 2}


def _verdicts(records: list[dict]) -> dict[str, tuple[str, str]]:
    lines = side_by_side.targets(records)
    rows = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in lines if line.startswith("| ")][1:]
    return {target: (measured, met) for target, measured, met in rows}


def test_targets_are_judged_on_the_records():
    ten = {"events": 10_000_000, "oracle_output": side_by_side.ORACLE_OUTPUT, "rows": [
        _row("ratecycle_mem", 2.0), _row("ratecycle_e2e", 10.0, peak_mib=2900),
        _row("duckdb_e2e", 25.0), _row("ratecycle_bills", 12.0),
        _row("ratecycle_nightly", 45.0)]}
    hundred = {"events": 100_000_000, "oracle_output": "10 columns", "rows": [
        _row("ratecycle_e2e", 120.0, peak_mib=3000, events=100_000_000)]}
    got = _verdicts([ten, hundred])
    assert got["in memory, full tariff, 10M: ≥ 5M events/s"] == ("5,000,000 events/s", "yes")
    assert got["end to end, 10M: ≥ 2× DuckDB SQL writing the same columns"][1] == "yes"
    assert got["end to end, 10M: peak memory ≤ 3 GB"] == ("3.04 GB", "**no**")
    assert got["end to end, 100M: 10× the 10M time within 15%"] == ("12.00×", "**no**")
    assert got["bills, 10M: ≤ 10 s"] == ("12.00 s", "**no**")
    assert got["simple deck in memory, 10M month: ≥ 5× DuckDB SQL"] == ("not measured", "-")


def test_an_oracle_row_of_a_record_that_wrote_fewer_columns_is_not_judged():
    old = {"events": 10_000_000, "oracle_output": None, "rows": [
        _row("ratecycle_e2e", 10.0), _row("duckdb_e2e", 25.0)]}
    got = _verdicts([old])
    assert got["end to end, 10M: ≥ 2× DuckDB SQL writing the same columns"] == (
        "not measured", "-")
    assert got["end to end, 10M: peak memory ≤ 3 GB"][1] == "yes"  # ratecycle's own row


def test_the_nightly_job_is_measured_in_a_child_process(tmp_path):
    data, work = tmp_path / "month", tmp_path / "work"
    generate(Params(5_000, buckets=2), data)
    work.mkdir()
    report = side_by_side.measure("ratecycle_nightly", data, work)
    assert report["wall_s"] > 0 and report["maxrss_kb"] > 0
    assert (work / "nightly" / "bills.duckdb").is_file()
