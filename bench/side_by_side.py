"""Side by side: the same generated month rated by ratecycle, DuckDB SQL and plain Polars.

    python -m bench.side_by_side --events 1000000

generates the month (or reuses it: ``out/bench/<events>``), then measures, each run in a
fresh subprocess so that its peak memory (``ru_maxrss``) is its own:

- ``floor``: one process reading the usage Parquet and writing it back unchanged;
- ``ratecycle e2e``: ``ratecycle rate`` on the usage folder (catalog load, rating of every
  bucket, rated Parquet written per bucket), in process and with a 2-worker pool;
- ``ratecycle in memory``: ``rating.rate_batch`` per bucket on frames already read, with
  the catalog already compiled (columns in, columns out, no file I/O);
- ``ratecycle bills``: bills.duckdb built (bills/ ``build_bills``) from the rated output of
  ``ratecycle e2e``;
- ``duckdb`` and ``polars``, in memory (a table / a frame in, rated out) and end to end
  (usage Parquet in, one rated Parquet file out).

Then it checks that the three end-to-end outputs agree on every event in every rated
column (``COMPARED``: all that ratecycle writes but the run id, amounts and span costs to
the 9th decimal) and that every bill total of ratecycle's bills.duckdb equals, to the
cent, the SQL bill oracle (``oracle_bills``) over each oracle's events; it prints the
table, keeps the numbers in ``bench/results/side_by_side-<events>.json`` and rewrites
``bench/RESULTS.md`` from every size measured so far.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"
# Every rated column ratecycle writes but run_id (each implementation writes its own run
# id), in rating/schema.py's order; the oracles write them all (tests check both).
COMPARED = ("status", "reason", "plan_id", "tariff", "deck", "matched_prefix",
            "destination_name", "rate_id", "rate", "rate_unit", "connect_fee", "increments",
            "billed_quantity", "bundle_quantity", "bundles", "tier", "amount", "flags",
            "currency", "customer_id", "period_start", "period_end", "cycle_start",
            "cycle_end", "late", "usage_period_start", "spans")
ORACLE_OUTPUT = "every rated column"  # recorded with each run: what the oracles wrote
FULL_ORACLES = ("duckdb_mem", "duckdb_e2e", "polars_mem", "polars_e2e")  # the kinds it names

# kind -> (label, what it includes)
KINDS = {
    "floor": ("floor: read + write usage Parquet",
              "one process reads every usage bucket file and writes it back unchanged "
              "(Polars, default compression)"),
    "ratecycle_e2e": ("ratecycle e2e (`rate`, in process)",
                      "`ratecycle rate DIR` as a function: catalog and accounts loaded, "
                      "every bucket read, rated and written (usage + all rated columns, "
                      "spans included), two buckets at a time on threads"),
    "ratecycle_e2e_w2": ("ratecycle e2e (`rate --workers 2`)",
                         "the same with a spawn pool of 2 workers; peak memory is the "
                         "parent's and the largest worker's (not their sum)"),
    "ratecycle_bills": ("ratecycle bills (`build_bills`)",
                        "bills.duckdb (bill lines, discounts, taxes, bills, bundle balances) "
                        "built from the rated Parquet that `ratecycle rate` wrote"),
    "ratecycle_nightly": ("ratecycle nightly job (`run`)",
                          "`ratecycle run --format parquet` of the usage files as a "
                          "function: ingest (duplicates and provenance checked), rating and "
                          "bills.duckdb, as the nightly batch runs"),
    "ratecycle_mem": ("ratecycle in memory (rate_batch)",
                      "rate_batch per bucket on frames already read, two buckets at a "
                      "time on threads as `ratecycle rate` runs them, catalog already "
                      "compiled"),
    "duckdb_mem": ("DuckDB SQL in memory",
                   "a DuckDB table of the usage in, a rated table out (usage + every rated "
                   "column ratecycle writes, spans and bundle draws included; deck and band "
                   "segments loaded inside the timing)"),
    "duckdb_e2e": ("DuckDB SQL e2e",
                   "read_parquet of the bucket files in, COPY of usage + every rated column "
                   "(spans included) to one Parquet file"),
    "polars_mem": ("Polars in memory",
                   "a DataFrame of the usage in, a rated DataFrame out (usage + every rated "
                   "column, spans included)"),
    "polars_e2e": ("Polars e2e",
                   "read_parquet of the bucket files in, write_parquet of usage + every "
                   "rated column (spans included) to one file"),
    "ratecycle_deck_mem": ("simple deck: ratecycle in memory (rate_batch)",
                           "the month's voice calls under the simple deck tariff "
                           "(bench/simple_deck.py: longest prefix and 60/1 increments "
                           "alone), rate_batch per bucket on frames already read, two at a "
                           "time on threads, catalog compiled; events/s counts the calls"),
    "duckdb_deck_mem": ("simple deck: DuckDB SQL in memory",
                        "the same calls in a DuckDB table, a table of event_id, matched "
                        "prefix and amount out (deck loaded inside the timing)"),
}
TARIFF = "issue-5-full"  # what records measured; older records lack bundles and tiers
AS_OF = datetime(2026, 12, 1, tzinfo=UTC)  # bills are built as of a fixed instant
DECK_OUTPUTS = {"ratecycle_deck_mem": "deck-ratecycle.parquet",
                "duckdb_deck_mem": "deck-duckdb.parquet"}
E2E_OUTPUTS = {"ratecycle_e2e": "ratecycle-rated", "duckdb_e2e": "duckdb-rated.parquet",
               "polars_e2e": "polars-rated.parquet"}


# --- the measured runs (each in its own process) ------------------------------------------

def _paths(data: Path) -> tuple[list[Path], Path, Path]:
    from bench.generate import usage_files

    return usage_files(data), data / "catalog.yaml", data / "accounts.parquet"


def _second_run(run, extra: dict):
    """In-memory runs are timed the second time in their process: the first loads the
    kernels and warms caches and allocator pools, as a nightly job is after its first
    bucket. The first run's time is kept in ``extra``. Returns (wall, result)."""
    t = time.perf_counter()
    run()
    extra["first_run_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    result = run()
    return time.perf_counter() - t, result


def _child(kind: str, data: Path, work: Path) -> dict:
    """Run one measurement; returns wall time of the timed part and extra facts."""
    files, catalog, accounts = _paths(data)
    extra: dict = {}
    if kind == "floor":
        import polars as pl

        out = work / "floor"
        out.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        for i, f in enumerate(files):
            pl.read_parquet(f).write_parquet(out / f"part-{i:03d}.parquet")
        wall = time.perf_counter() - t
    elif kind in ("ratecycle_e2e", "ratecycle_e2e_w2"):
        from ratecycle.job import rate_command

        out = work / E2E_OUTPUTS["ratecycle_e2e"]
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        summary = rate_command(data, catalog, out, accounts_path=accounts,
                               workers=2 if kind.endswith("w2") else 1)
        wall = time.perf_counter() - t
        extra = {"rated": summary.rated, "unrated": dict(summary.unrated)}
    elif kind == "ratecycle_bills":
        from bills import build_bills
        from rules import load_accounts, load_catalog

        root = work / E2E_OUTPUTS["ratecycle_e2e"]
        rated = sorted(p.relative_to(root).as_posix() for p in root.glob("bucket=*/*.parquet"))
        t = time.perf_counter()
        cat = load_catalog(catalog)
        summary = build_bills(root, rated, [], cat, [], accounts=load_accounts(accounts, cat),
                              as_of=AS_OF)
        wall = time.perf_counter() - t
        extra = {"bills": summary["bills"], "billed_total": summary["billed_total"]}
    elif kind == "ratecycle_nightly":
        from ratecycle.cli import main as ratecycle

        out = work / "nightly"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        code = ratecycle(["run", "--format", "parquet", *map(str, files), "--catalog",
                          str(catalog), "--accounts", str(accounts), "--out", str(out),
                          "--as-of", AS_OF.isoformat()])
        wall = time.perf_counter() - t
        if code != 0:
            raise SystemExit(f"ratecycle run failed with exit code {code}")
    elif kind == "ratecycle_mem":
        import polars as pl

        from rating import compile_catalog, rate_batch
        from rules import load_accounts, load_catalog

        t = time.perf_counter()
        cat = load_catalog(catalog)
        compiled = compile_catalog(cat)
        accts = load_accounts(accounts, cat)
        extra["catalog_load_compile_s"] = round(time.perf_counter() - t, 3)
        frames = [pl.read_parquet(f) for f in files]
        def rate_all() -> int:
            with ThreadPoolExecutor(2) as pool:  # two buckets at a time, as `ratecycle rate`
                return sum(pool.map(
                    lambda f: len(rate_batch(f, cat, compiled, accts, "bench")), frames))

        wall, extra["rows"] = _second_run(rate_all, extra)
    elif kind == "duckdb_mem":
        import duckdb

        from bench.oracle_duckdb import parquet_source, rate_table

        con = duckdb.connect()
        con.execute(f"CREATE TABLE usage AS SELECT * FROM {parquet_source(files)}")

        def rate_all() -> None:
            con.execute("DROP TABLE IF EXISTS rated")  # not two results in memory at once
            rate_table(con, catalog, "usage", "rated", keep_usage=True, accounts=accounts)

        wall, _ = _second_run(rate_all, extra)
        extra["rows"] = con.execute("SELECT count(*) FROM rated").fetchone()[0]
    elif kind == "duckdb_e2e":
        from bench.oracle_duckdb import rate_files

        t = time.perf_counter()
        rate_files(files, catalog, work / E2E_OUTPUTS[kind], accounts=accounts)
        wall = time.perf_counter() - t
    elif kind == "polars_mem":
        import polars as pl

        from bench.oracle_polars import rate

        usage = pl.read_parquet([str(f) for f in files])
        wall, extra["rows"] = _second_run(
            lambda: len(rate(usage, catalog, keep_usage=True, accounts=accounts)), extra)
    elif kind == "polars_e2e":
        from bench.oracle_polars import rate_files

        t = time.perf_counter()
        rate_files(files, catalog, work / E2E_OUTPUTS[kind], accounts=accounts)
        wall = time.perf_counter() - t
    elif kind == "ratecycle_deck_mem":
        import polars as pl

        from bench.simple_deck import compared, voice_calls
        from rating import compile_catalog, rate_batch
        from rules import load_catalog

        cat = load_catalog(data / "simple" / "catalog.yaml")
        compiled = compile_catalog(cat)
        frames = voice_calls(files)

        def rate_all() -> list:
            # only the compared columns are kept, as the full in-memory run keeps nothing
            with ThreadPoolExecutor(2) as pool:
                return list(pool.map(lambda f: rate_batch(f, cat, compiled, None, "bench")
                                     .select("event_id", "matched_prefix", "amount"), frames))

        wall, rated = _second_run(rate_all, extra)
        extra["events"] = sum(len(r) for r in rated)
        pl.concat([compared(r) for r in rated]).write_parquet(work / DECK_OUTPUTS[kind])
    elif kind == "duckdb_deck_mem":
        import duckdb

        from bench.oracle_duckdb import parquet_source
        from bench.simple_deck import rate_duckdb

        con = duckdb.connect()
        con.execute(f"CREATE TABLE usage AS SELECT * FROM {parquet_source(files)} "
                    "WHERE service = 'voice'")

        def rate_all() -> None:
            con.execute("DROP TABLE IF EXISTS rated")
            rate_duckdb(con, "usage", data / "simple" / "deck.csv", "rated")

        wall, _ = _second_run(rate_all, extra)
        extra["events"] = con.execute("SELECT count(*) FROM rated").fetchone()[0]
        con.execute(f"COPY rated TO '{work / DECK_OUTPUTS[kind]}' (FORMAT parquet)")
    else:
        raise SystemExit(f"unknown kind {kind}")
    return {"wall_s": wall, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "children_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            **extra}


def measure(kind: str, data: Path, work: Path) -> dict:
    """Run ``kind`` in a fresh interpreter; its JSON report is its last line of output."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.side_by_side", "--child", kind, "--data", str(data),
         "--work", str(work)],
        cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- agreement -----------------------------------------------------------------------------

def compare(work: Path, data: Path) -> dict:
    """Every event of the three end-to-end outputs, joined on event_id, column by column
    (one column of the three outputs read at a time, so that memory stays small)."""
    import polars as pl

    ours_scan = pl.scan_parquet(
        str(work / E2E_OUTPUTS["ratecycle_e2e"] / "bucket=*" / "*.parquet"),
        hive_partitioning=False)
    scans = {name.removesuffix("_e2e"): pl.scan_parquet(work / E2E_OUTPUTS[name])
             for name in ("duckdb_e2e", "polars_e2e")}
    ids = ours_scan.select("event_id").collect()
    report = {"events": len(ids), "compared": list(COMPARED), "oracles": {}}
    for name, scan in scans.items():
        theirs = scan.select("event_id").collect()
        joined = ids.join(theirs, on="event_id", how="full", coalesce=True)
        report["oracles"][name] = {
            "events": len(theirs),
            "missing_or_extra": 2 * len(joined) - len(ids) - len(theirs),
            "mismatches": {}, "examples": []}
    for c in COMPARED:
        ours = ours_scan.select("event_id", c).collect()
        for name, scan in scans.items():
            result = report["oracles"][name]
            # events both wrote (an event one of them lacks is counted above, once)
            joined = ours.join(scan.select("event_id", c).collect(), on="event_id",
                               suffix="_oracle")
            bad = joined.filter(~pl.col(c).eq_missing(pl.col(f"{c}_oracle")))
            result["mismatches"][c] = len(bad)
            for row in bad.head(3).iter_rows(named=True):  # the event and the two values
                result["examples"].append({k: str(v) for k, v in row.items()})
    for result in report["oracles"].values():
        result["agree"] = (result["missing_or_extra"] == 0
                           and not any(result["mismatches"].values()))
    report["bills"] = compare_bills(work, data) if (
        work / E2E_OUTPUTS["ratecycle_e2e"] / "bills.duckdb").exists() else None
    totals = ours_scan.select(pl.col("amount").sum(), pl.col("billed_quantity").sum()
                              ).collect().row(0)
    report["total_amount"] = str(totals[0])
    report["total_billed_quantity"] = int(totals[1])
    return report


def compare_deck(work: Path) -> dict:
    """Every call of the simple deck runs: matched prefix and amount (nanos) equal."""
    import polars as pl

    from bench.simple_deck import COLUMNS

    ours, theirs = (pl.read_parquet(work / DECK_OUTPUTS[k]) for k in DECK_OUTPUTS)
    joined = ours.join(theirs, on="event_id", how="full", suffix="_sql", coalesce=True)
    bad = joined.filter(pl.any_horizontal(~pl.col(c).eq_missing(pl.col(f"{c}_sql"))
                                          for c in COLUMNS[1:]))
    return {"events": len(ours), "sql_events": len(theirs), "mismatches": len(bad),
            "unmatched": int(ours["matched_prefix"].null_count()),
            "examples": [{k: str(v) for k, v in r.items()} for r in bad.head(3).to_dicts()],
            "agree": len(joined) == len(ours) == len(theirs) and not len(bad)}


def compare_bills(work: Path, data: Path) -> dict:
    """Every bill total of ratecycle's bills.duckdb against the bill oracle's over each
    oracle's rated events (subtotal, discount, tax and total, to the cent)."""
    import duckdb
    import polars as pl

    from bench.oracle_bills import BILL_SCHEMA, bill_totals

    catalog, accounts = data / "catalog.yaml", data / "accounts.parquet"
    db = work / E2E_OUTPUTS["ratecycle_e2e"] / "bills.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        ours = con.sql("SELECT customer_id, period_start, subtotal, discount, tax, total "
                       "FROM bills").pl().cast(BILL_SCHEMA)
    report = {"bills": len(ours), "total": str(ours["total"].sum()), "oracles": {}}
    money = ("subtotal", "discount", "tax", "total")
    for name in ("duckdb_e2e", "polars_e2e"):
        con = duckdb.connect()
        theirs = bill_totals(con, f"read_parquet('{work / E2E_OUTPUTS[name]}')", catalog,
                             accounts)
        joined = ours.join(theirs, on=["customer_id", "period_start"], how="full",
                           suffix="_oracle", coalesce=True)
        bad = joined.filter(pl.any_horizontal(~pl.col(c).eq_missing(pl.col(f"{c}_oracle"))
                                              for c in money))
        report["oracles"][name.removesuffix("_e2e")] = {
            "bills": len(theirs), "mismatches": len(bad),
            "examples": [{k: str(v) for k, v in r.items()} for r in bad.head(3).to_dicts()]}
    return report


# --- the machine and the report ------------------------------------------------------------

def machine() -> dict:
    import duckdb
    import numba
    import numpy
    import polars
    import pyarrow

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1), "cpu": cpu,
        "os": platform.platform(), "python": platform.python_version(),
        "polars": polars.__version__, "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__, "numba": numba.__version__, "numpy": numpy.__version__,
    }


def summarise(runs: dict[str, list[dict]], events: int) -> list[dict]:
    floor = statistics.median(r["wall_s"] for r in runs["floor"])
    rows = []
    for kind, label in ((k, v[0]) for k, v in KINDS.items() if k in runs):
        walls = [r["wall_s"] for r in runs[kind]]
        median = statistics.median(walls)
        counted = runs[kind][0].get("events", events)  # the simple deck counts its calls
        peak = max(max(r["maxrss_kb"], r["children_maxrss_kb"]) for r in runs[kind])
        rows.append({"kind": kind, "label": label, "median_s": round(median, 3),
                     "walls_s": [round(w, 3) for w in walls],
                     "events_per_s": round(counted / median), "peak_mib": round(peak / 1024),
                     "ratio_to_floor": round(median / floor, 2)})
    return rows


def table(rows: list[dict]) -> str:
    head = ("| run | median wall | runs | events/s | peak memory | × floor |\n"
            "|---|---:|---|---:|---:|---:|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r['label']} | {r['median_s']:.2f} s | "
                     f"{', '.join(f'{w:.2f}' for w in r['walls_s'])} | "
                     f"{r['events_per_s']:,} | {r['peak_mib']:,} MiB | "
                     f"{r['ratio_to_floor']:.2f} |")
    return "\n".join(lines)


def agreement_text(check: dict) -> str:
    lines = []
    for name, r in check["oracles"].items():
        compared = list(r["mismatches"])  # a record of an earlier run compared fewer
        what = (f"every rated column but run_id ({len(compared)} columns, spans and bundle "
                "draws included; amounts and span costs to the 9th decimal)"
                if set(compared) == set(COMPARED)
                else f"{', '.join(compared)} (amounts to the 9th decimal)")
        if r["agree"]:
            lines.append(f"- {name} agrees with ratecycle on all {check['events']:,} events "
                         f"in {what}.")
        else:
            differ = {c: n for c, n in r["mismatches"].items() if n}
            lines.append(f"- **{name} DISAGREES** with ratecycle in {what}: missing/extra "
                         f"events {r['missing_or_extra']}, events differing per column "
                         f"{differ or 'none'}; e.g. {r['examples'][:3]}")
    bills = check.get("bills")
    for name, r in (bills or {}).get("oracles", {}).items():
        if r["mismatches"] == 0 and r["bills"] == bills["bills"]:
            lines.append(f"- {name}: every one of the {bills['bills']:,} bill totals of "
                         "ratecycle's bills.duckdb equals the bill oracle's over its events "
                         "(subtotal, discount, tax, total; to the cent).")
        else:
            lines.append(f"- **{name} bills DISAGREE**: {r['mismatches']} bills differ "
                         f"({r['bills']} against {bills['bills']}); e.g. {r['examples']}")
    if bills:
        lines.append(f"- Sum of bill totals (ratecycle): {bills['total']}.")
    if check.get("total_amount") is not None:
        lines.append(f"- Sum of rated amounts (ratecycle): {check['total_amount']}; billed "
                     f"quantity {check['total_billed_quantity']:,}.")
    deck = check.get("deck")
    if deck and deck["agree"]:
        lines.append(f"- Simple deck: DuckDB SQL agrees with ratecycle on all "
                     f"{deck['events']:,} calls (matched prefix and amount to the 9th "
                     f"decimal; {deck['unmatched']:,} of them match no prefix).")
    elif deck:
        lines.append(f"- **Simple deck: DuckDB SQL DISAGREES** with ratecycle on "
                     f"{deck['mismatches']} calls ({deck['sql_events']} against "
                     f"{deck['events']}); e.g. {deck['examples']}")
    return "\n".join(lines)


def scaling(records: list[dict]) -> list[str]:
    """A table of wall time and peak memory per size, and a plot (bench/results/scaling.svg,
    drawn by hand: no plotting dependency) of wall time against events, log-log."""
    sizes = [r["events"] for r in records]
    kinds = [k for k in KINDS if any(k in {row["kind"] for row in r["rows"]} for r in records)]
    cell = {(r["events"], row["kind"]): row for r in records for row in r["rows"]}
    lines = ["## Scaling", "",
             "Median wall time and peak memory per size (the runs below; one run where a "
             "size was measured once).", "",
             "| run | " + " | ".join(f"{n:,} events" for n in sizes) + " |",
             "|---|" + "---:|" * len(sizes)]
    for k in kinds:
        lines.append(f"| {KINDS[k][0]} | " + " | ".join(
            f"{cell[(n, k)]['median_s']:.2f} s, {cell[(n, k)]['peak_mib']:,} MiB"
            if (n, k) in cell else "-" for n in sizes) + " |")
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "scaling.svg").write_text(_svg(sizes, kinds, cell))
    return [*lines, "", "![wall time against events](results/scaling.svg)"]


def _svg(sizes: list[int], kinds: list[str], cell: dict) -> str:
    import math

    width, height, pad = 900, 420, 60
    walls = [cell[(n, k)]["median_s"] for n in sizes for k in kinds if (n, k) in cell]
    x0, x1 = math.log10(min(sizes)), math.log10(max(sizes))
    y0, y1 = math.floor(math.log10(min(walls))), math.ceil(math.log10(max(walls)))
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def xy(n: float, w: float) -> tuple[float, float]:
        return (pad + (math.log10(n) - x0) / (x1 - x0) * (width - 2 * pad - 160),
                height - pad - (math.log10(w) - y0) / (y1 - y0) * (height - 2 * pad))

    colours = ["#000000", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
               "#a6761d", "#666666", "#1f78b4"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{pad}" y="20" font-size="13">Median wall time (s) against events, '
           'log-log</text>']
    for e in range(y0, y1 + 1):
        _, y = xy(min(sizes), 10.0**e)
        out.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{width - pad - 230}" y2="{y:.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{pad - 6}" y="{y + 4:.1f}" text-anchor="end">{10.0**e:g}</text>')
    for n in sizes:
        x, _ = xy(n, 10.0**y0)
        out.append(f'<text x="{x:.1f}" y="{height - pad + 16}" text-anchor="middle">'
                   f'{n:,}</text>')
    for i, k in enumerate(kinds):
        points = [xy(n, cell[(n, k)]["median_s"]) for n in sizes if (n, k) in cell]
        colour = colours[i % len(colours)]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                       'stroke-width="2"/>')
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>'
                for x, y in points]
        ly = pad + 16 * i
        out.append(f'<rect x="{width - pad - 220}" y="{ly - 8}" width="10" height="10" '
                   f'fill="{colour}"/>')
        out.append(f'<text x="{width - pad - 205}" y="{ly + 1}">'
                   f'{KINDS[k][0].replace("`", "")}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


GB = 10**9 / 2**20  # MiB in a (decimal) gigabyte, as issue 5's memory targets count


def targets(records: list[dict]) -> list[str]:
    """Each target of issue 5 beside what the newest record of its size measured."""
    by_size = {r["events"]: {row["kind"]: row for row in r["rows"]  # oracles as they are now
                             if r.get("oracle_output") == ORACLE_OUTPUT
                             or row["kind"] not in FULL_ORACLES}
               for r in records}
    ten, hundred = by_size.get(10_000_000, {}), by_size.get(100_000_000, {})
    lines = ["## Targets (issue 5)", "",
             "Judged on the 10M and 100M runs below; a target without its runs says so.", "",
             "| target | measured | met |", "|---|---|---|"]

    def row(target: str, needs: list[tuple[dict, str]], measured, met) -> None:
        if all(k in rows for rows, k in needs):
            lines.append(f"| {target} | {measured()} | {'yes' if met() else '**no**'} |")
        else:
            lines.append(f"| {target} | not measured | - |")

    def wall(rows, k):
        return rows[k]["median_s"]

    row("in memory, full tariff, 10M: ≥ 5M events/s", [(ten, "ratecycle_mem")],
        lambda: f"{ten['ratecycle_mem']['events_per_s']:,} events/s",
        lambda: ten["ratecycle_mem"]["events_per_s"] >= 5_000_000)
    def faster(target: str, ours: str, theirs: str, times: float, aside=lambda: "") -> None:
        row(target, [(ten, ours), (ten, theirs)],
            lambda: f"{wall(ten, theirs) / wall(ten, ours):.2f}× ({wall(ten, ours):.2f} s "
                    f"against {wall(ten, theirs):.2f} s{aside()})",
            lambda: wall(ten, theirs) >= times * wall(ten, ours))

    faster("simple deck in memory, 10M month: ≥ 5× DuckDB SQL", "ratecycle_deck_mem",
           "duckdb_deck_mem", 5)
    faster("end to end, 10M: ≥ 2× DuckDB SQL writing the same columns", "ratecycle_e2e",
           "duckdb_e2e", 2, lambda: f"; {ten['ratecycle_e2e']['ratio_to_floor']:.2f}× the floor")
    row("end to end, 10M: peak memory ≤ 3 GB", [(ten, "ratecycle_e2e")],
        lambda: f"{ten['ratecycle_e2e']['peak_mib'] / GB:.2f} GB",
        lambda: ten["ratecycle_e2e"]["peak_mib"] <= 3 * GB)
    row("end to end, 100M: 10× the 10M time within 15%",
        [(ten, "ratecycle_e2e"), (hundred, "ratecycle_e2e")],
        lambda: f"{wall(hundred, 'ratecycle_e2e') / wall(ten, 'ratecycle_e2e'):.2f}×",
        lambda: abs(wall(hundred, "ratecycle_e2e") / wall(ten, "ratecycle_e2e") - 10) <= 1.5)
    row("end to end, 100M: peak memory ≤ 4 GB", [(hundred, "ratecycle_e2e")],
        lambda: f"{hundred['ratecycle_e2e']['peak_mib'] / GB:.2f} GB",
        lambda: hundred["ratecycle_e2e"]["peak_mib"] <= 4 * GB)
    row("bills, 10M: ≤ 10 s", [(ten, "ratecycle_bills")],
        lambda: f"{wall(ten, 'ratecycle_bills'):.2f} s",
        lambda: wall(ten, "ratecycle_bills") <= 10)
    row("bills, 100M: 10× the 10M time within 15%, peak ≤ 4 GB",
        [(ten, "ratecycle_bills"), (hundred, "ratecycle_bills")],
        lambda: f"{wall(hundred, 'ratecycle_bills') / wall(ten, 'ratecycle_bills'):.2f}×, "
                f"{hundred['ratecycle_bills']['peak_mib'] / GB:.2f} GB",
        lambda: abs(wall(hundred, "ratecycle_bills") / wall(ten, "ratecycle_bills") - 10) <= 1.5
        and hundred["ratecycle_bills"]["peak_mib"] <= 4 * GB)
    row("nightly job (ingest + rate + bill), 10M: ≤ 60 s", [(ten, "ratecycle_nightly")],
        lambda: f"{wall(ten, 'ratecycle_nightly'):.2f} s, "
                f"{ten['ratecycle_nightly']['peak_mib'] / GB:.2f} GB",
        lambda: wall(ten, "ratecycle_nightly") <= 60)
    return lines


def cold_runs(record: dict) -> list[str]:
    """A line naming the first, untimed run of each in-memory kind (where recorded)."""
    cold = [f"{KINDS[k][0]} {statistics.median(r['first_run_s'] for r in runs):.2f} s"
            for k, runs in record.get("runs", {}).items()
            if k in KINDS and runs and all("first_run_s" in r for r in runs)]
    return ["", "First runs in their process (not timed above): " + "; ".join(cold) + "."] \
        if cold else []


def write_results_md() -> None:
    """bench/RESULTS.md from every bench/results/side_by_side-*.json, smallest first."""
    found = sorted((json.loads(p.read_text()) for p in RESULTS_DIR.glob("side_by_side-*.json")),
                   key=lambda r: r["events"])
    parts = [
        "# Side-by-side results",
        "",
        "Written by `bench/side_by_side.py`; do not edit by hand. Every number below was "
        "measured by the command shown with it, on a 2-core virtual machine whose memory "
        "comes slowly and unevenly when first touched (allocating and filling 512 MB took "
        "from 30 ms to 1 s in one process, run after run), so treat differences of 10-20% "
        "as noise; the kinds of one round run one after another, never side by side.",
        "",
        "Tariff measured: the generated catalog of `bench/generate.py` — a 10,000-prefix deck "
        "with a row per band (three bands in Europe/Berlin, voice split at band changes), "
        "two-slot voice rates (first 60 s as a block, then per second) with connect fees, "
        "SMS per message, data in 1 kB increments priced by graduated tiers (200 MB, "
        "1,000 MB, beyond) per billing period, two plans held half and half via accounts "
        "(`voice300` with a 300-minute voice bundle per billing period, connect fee waived "
        "on calls it covers whole), a percentage discount held by half the customers and "
        "an exclusive VAT (both on bill lines, so not in event amounts): the full tariff "
        "of issue 5.",
        "",
        "What each run includes:",
        "",
        *[f"- **{label}**: {what}." for label, what in KINDS.values()],
        "",
        "ratecycle and both oracles write usage + every rated column of rating/schema.py "
        "(status, reason, plan, tariff, deck, matched prefix, destination name, rate, rate "
        "unit, connect fee, increments, billed and bundle quantity, bundle draws, tier, "
        "amount, flags, currency, customer, billing periods, late, spans, run id); the "
        "agreement check compares every one of them but the run id, which each writes its "
        "own. Sizes measured before the oracles wrote them all say so below. Peak memory "
        "is the child process's `ru_maxrss`. Every in-memory run (ratecycle's and the "
        "oracles') is timed the second time its process does the work, as in a nightly "
        "job after its first bucket; the first, with Numba's kernels loaded and memory "
        "touched for the first time, is in the records as `first_run_s`.",
        "",
        "ratecycle's runs set the allocators as the `ratecycle` command does "
        "(`ratecycle/allocators.py`: freed memory kept for reuse instead of handed back "
        "and faulted in again); the oracles run with their libraries' defaults. DuckDB "
        "gathers each call's spans with `list_sort`, not its slower ordered aggregate "
        "(see `bench/oracle_duckdb.py`).",
    ]
    full = [r for r in found if r.get("tariff") == TARIFF]
    parts += ["", *targets(full)]
    if len(full) > 1:
        parts += ["", *scaling(full)]
    for r in found:
        m = r["machine"]
        parts += [
            "",
            f"## {r['events']:,} events ({r['data']['buckets']} buckets, "
            f"{r['data']['subscribers']:,} subscribers)",
            "",
            f"Command: `{r['command']}` — {r['when']}; median of {r['repeat']} runs each.",
            "",
            f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, {m['os']}; "
            f"Python {m['python']}, polars {m['polars']}, duckdb {m['duckdb']}, pyarrow "
            f"{m['pyarrow']}, numba {m['numba']}, numpy {m['numpy']}.",
            "",
            table(r["rows"]),
            *cold_runs(r),
            "",
            agreement_text(r["check"]),
        ]
        if r.get("tariff") != TARIFF:
            parts += ["", "- **Measured with an earlier tariff** (no bundle, flat data "
                      "price, bills not compared); re-run this size to refresh it."]
        elif r.get("oracle_output") != ORACLE_OUTPUT and any(
                row["kind"] in FULL_ORACLES for row in r["rows"]):
            parts += ["", "- **Measured when the oracles wrote only 10 rated columns** "
                      "(status, reason, matched prefix, plan, destination name, billed and "
                      "bundle quantity, tier, amount, usage period start), not every rated "
                      "column as ratecycle does: their times are for less output; re-run "
                      "this size to refresh it."]
        if r.get("notes"):
            parts += ["", *[f"- {n}" for n in r["notes"]]]
    RESULTS_MD.write_text("\n".join(parts) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.side_by_side",
        description="Rate one generated month with ratecycle, DuckDB SQL and plain Polars; "
                    "check they agree on every event; print and record wall time, events/s, "
                    "peak memory and the ratio to a read+write floor.")
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events in the month (default %(default)s)")
    parser.add_argument("--data", type=Path, help="month folder (default out/bench/<events>; "
                        "generated unless it already holds this month)")
    parser.add_argument("--work", type=Path, help="scratch folder for outputs "
                        "(default out/bench/<events>-work)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the "
                        "median is reported (default %(default)s)")
    parser.add_argument("--only", nargs="*", choices=list(KINDS),
                        help="measure only these (the floor is always measured)")
    parser.add_argument("--no-record", action="store_true",
                        help="print only; leave bench/results and RESULTS.md alone")
    parser.add_argument("--child", choices=list(KINDS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    data = args.data or ROOT / "out" / "bench" / str(args.events)
    work = args.work or ROOT / "out" / "bench" / f"{args.events}-work"
    if args.child:
        if args.child.startswith("ratecycle"):  # as the `ratecycle` command runs
            from ratecycle.allocators import keep_freed_memory

            keep_freed_memory()
        print(json.dumps(_child(args.child, data, work)))
        return 0

    from bench.generate import Params, generate, is_generated

    params = Params(args.events)
    if is_generated(data, params):
        print(f"reusing {data}", file=sys.stderr)
    else:
        shutil.rmtree(data, ignore_errors=True)
        t = time.perf_counter()
        generate(params, data)
        print(f"generated {data} in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    manifest = json.loads((data / "manifest.json").read_text())
    work.mkdir(parents=True, exist_ok=True)
    from bench.simple_deck import write_tariff

    write_tariff(data)

    kinds = ["floor", *[k for k in KINDS if k != "floor" and (not args.only or k in args.only)]]
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for i in range(args.repeat):  # rounds, so that drifting load spreads over every kind
        for kind in kinds:
            result = measure(kind, data, work)
            runs[kind].append(result)
            print(f"round {i + 1}/{args.repeat} {kind:<17} {result['wall_s']:8.2f}s  "
                  f"{max(result['maxrss_kb'], result['children_maxrss_kb']) // 1024:>6} MiB",
                  file=sys.stderr, flush=True)
    rows = summarise(runs, manifest["events"])
    check = compare(work, data) if all(k in runs for k in E2E_OUTPUTS) else None
    if all(k in runs for k in DECK_OUTPUTS):
        check = check or {"oracles": {}, "events": 0, "total_amount": None}
        check["deck"] = compare_deck(work)
    print(table(rows))
    if check:
        print(agreement_text(check))
    if not args.no_record:
        command = "python -m bench.side_by_side " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:]))
        record = {
            "events": manifest["events"], "command": command.strip(),
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "repeat": args.repeat, "machine": machine(),
            "data": {"buckets": manifest["buckets"], "subscribers": manifest["subscribers"],
                     "params": manifest["params"]},
            "tariff": TARIFF, "oracle_output": ORACLE_OUTPUT, "rows": rows, "runs": runs,
            "check": check or {"oracles": {}, "events": 0, "total_amount": "-",
                               "total_billed_quantity": 0},
        }
        RESULTS_DIR.mkdir(exist_ok=True)
        (RESULTS_DIR / f"side_by_side-{manifest['events']}.json").write_text(
            json.dumps(record, indent=2) + "\n")
        write_results_md()
        print(f"wrote {RESULTS_MD.relative_to(ROOT)}", file=sys.stderr)
    ok = check is None or (all(r["agree"] for r in check["oracles"].values())
                           and all(r["mismatches"] == 0 for r in
                                   (check.get("bills") or {}).get("oracles", {}).values())
                           and check.get("deck", {"agree": True})["agree"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
