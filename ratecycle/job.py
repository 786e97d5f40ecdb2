"""The nightly job: the one place where ingest, rules, rating and bills are wired together.

Rating is split into tasks, one per subscriber bucket; a task names the files it reads
and writes and nothing else, writes under a temporary name and renames, so a retried
task is harmless and the tasks can run in a `spawn` process pool.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import polars as pl

from bills import RunRecord, build_bills
from ingest import IngestOptions, SourceFileError, ingest_to
from ingest.pipeline import MISSING, replace_path
from rating import RATED, compile_catalog, rate_batch, threads_safe
from rules import load_accounts, load_catalog

from .allocators import keep_freed_memory


class Progress:
    """Progress lines on stderr with the elapsed time; silent when ``quiet``."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def __call__(self, message: str) -> None:
        if not self.quiet:
            import sys

            print(f"[{self.elapsed():7.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RateTask:
    """Rate one bucket: read ``usage``, write ``out`` (via a temporary name)."""

    bucket: int
    usage: Path
    out: Path
    catalog: Path
    accounts: Path | None
    run_id: str
    version: str  # digests of the catalog and accounts this run loaded
    earlier: tuple[Path, ...] = ()  # the bucket's rated files from other batches
    prepared: Path | None = None  # that version's catalog, compiled, accounts, pickled


EARLIER_COLUMNS = ["subscriber_id", "plan_id", "service", "usage_period_start", "status",
                   "billed_quantity", "bundle_quantity", "bundles"]


def _earlier(paths: tuple[Path, ...], usage: pl.DataFrame) -> pl.DataFrame | None:
    """Rated rows of other batches for this bucket's subscribers, whose bundle and tier use
    this batch continues from (none when the catalog has no bundles or graduated tiers)."""
    if not paths:
        return None
    subscribers = usage["subscriber_id"].unique().implode()
    return pl.concat([pl.scan_parquet(p).select(EARLIER_COLUMNS) for p in paths])\
        .filter(pl.col("subscriber_id").is_in(subscribers)).collect()


def _version(catalog, accounts) -> str:
    return f"{catalog.digest}/{accounts.digest if accounts else ''}"


_PREPARED: dict = {}


def _prepared(catalog_path: Path, accounts_path: Path | None, version: str | None = None):
    """Catalog, compiled tariff and accounts, loaded once per process and version.
    ``version`` (the run's catalog and accounts digests) keeps a task from using what an
    earlier run in the same process loaded from a file that has changed since; without it
    the files are read afresh."""
    key = (catalog_path, accounts_path, version)
    if version is not None and key in _PREPARED:
        return _PREPARED[key]
    catalog = load_catalog(catalog_path)
    accounts = load_accounts(accounts_path, catalog) if accounts_path else None
    prepared = (catalog, compile_catalog(catalog), accounts)
    version = _version(catalog, accounts)
    _PREPARED.clear()  # one catalog version at a time is all a process needs
    _PREPARED[(catalog_path, accounts_path, version)] = prepared
    return prepared


def _prepared_for(task: RateTask):
    """A worker process takes what its run prepared (loading and compiling a catalog of
    many deck rows costs seconds, every worker again); in process, the cache serves."""
    key = (task.catalog, task.accounts, task.version)
    if task.prepared is not None and key not in _PREPARED:
        with task.prepared.open("rb") as handle:
            prepared = pickle.load(handle)  # written by this run's parent, in its staging
        _PREPARED.clear()
        _PREPARED[key] = prepared
    return _prepared(task.catalog, task.accounts, task.version)


def run_task(task: RateTask) -> dict:
    """Pure function of its inputs; returns the task's row counts."""
    return _write_task(task, _rate_task(task))


def _rate_task(task: RateTask) -> pl.DataFrame:
    catalog, compiled, accounts = _prepared_for(task)
    usage = pl.read_parquet(task.usage)
    earlier = _earlier(task.earlier, usage) if compiled.cumulative else None
    return rate_batch(usage, catalog, compiled, accounts, task.run_id, earlier)


def _write_task(task: RateTask, rated: pl.DataFrame) -> dict:
    task.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = task.out.with_name(f".{task.out.name}.{os.getpid()}.tmp")
    rated.write_parquet(tmp, compression="zstd", compression_level=1)  # measured: as small,
    # faster than the default level
    os.replace(tmp, task.out)
    counts = rated.group_by("status", "reason").len()
    return {"bucket": task.bucket, "rows": len(rated),
            "counts": [(r["status"], r["reason"], r["len"]) for r in counts.iter_rows(named=True)]}


def _worker_init() -> None:
    import signal

    # Ctrl-C is the parent's to handle; workers stop when the pool is shut down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
    keep_freed_memory()  # glibc's settings are per process; jemalloc's came with the env


def run_tasks(tasks: list[RateTask], workers: int, progress: Progress) -> list[dict]:
    """Run tasks in process (workers=1: two at a time on threads where the kernels allow
    it, else one rated while the one before is written) or in a spawn pool; progress per
    finished task."""
    results = []
    done_rows = 0

    def report(result: dict) -> None:
        nonlocal done_rows
        done_rows += result["rows"]
        results.append(result)
        progress(f"rated bucket {result['bucket']:03d} ({len(results)}/{len(tasks)} tasks, "
                 f"{done_rows:,} events)")

    if workers <= 1 and len(tasks) > 1 and threads_safe():
        # Two tasks at a time on threads, each rated and written whole: the kernels, Polars
        # and Parquet writing leave the GIL (10M-event bench month: 15 s against 17 s for
        # one thread rating while another writes); two tasks' frames in memory at most.
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(run_task, task) for task in tasks]
            try:
                for future in as_completed(futures):
                    report(future.result())
            except BaseException:  # a failed task or Ctrl-C: start no other task
                for future in futures:
                    future.cancel()
                raise
    elif workers <= 1 or len(tasks) <= 1:
        # One task is written while the next is rated (writing Parquet leaves the GIL, so
        # the second core is used); one written frame waits at most.
        with ThreadPoolExecutor(1) as writer:
            pending = None
            for task in tasks:
                rated = _rate_task(task)
                if pending is not None:
                    report(pending.result())
                pending = writer.submit(_write_task, task, rated)
                del rated
            if pending is not None:
                report(pending.result())
    else:
        # spawn, not fork: Polars in a forked child can hang; one Polars thread per worker.
        os.environ["POLARS_MAX_THREADS"] = "1"
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                 initializer=_worker_init) as pool:
            for result in pool.map(run_task, tasks):
                report(result)
    return sorted(results, key=lambda r: r["bucket"])


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_id_of(inputs: dict) -> str:
    """A run id derived from everything that decides the output, so a re-run is identical."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class RunSummary:
    run_id: str
    read: int = 0
    rated: int = 0
    unrated: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)
    bills: dict = field(default_factory=dict)
    wall_s: float = 0.0

    def accounting(self) -> dict:
        return {"read": self.read, "rated": self.rated,
                "unrated": dict(sorted(self.unrated.items())),
                "quarantined": dict(sorted(self.quarantined.items()))}

    def balanced(self) -> bool:
        return self.read == self.rated + sum(self.unrated.values()) + sum(
            self.quarantined.values())

    def text(self) -> str:
        rate = self.read / self.wall_s if self.wall_s else 0.0
        lines = [
            f"run {self.run_id}",
            f"  events read      {self.read:>12,}",
            f"  rated            {self.rated:>12,}",
            f"  unrated          {sum(self.unrated.values()):>12,}  "
            + ", ".join(f"{r} {n:,}" for r, n in sorted(self.unrated.items())),
            f"  quarantined      {sum(self.quarantined.values()):>12,}  "
            + ", ".join(f"{r} {n:,}" for r, n in sorted(self.quarantined.items())),
        ]
        if self.bills:
            lines.append(f"  bills            {self.bills['bills']:>12,}")
        for service, amount in self.bills.get("revenue_by_service", {}).items():
            lines.append(f"  revenue {service:<16} {amount:>14}")
        for bundle, (used, allowance, empty) in self.bills.get("bundles", {}).items():
            share = used / allowance if allowance else 0.0
            lines.append(f"  bundle {bundle!r}: {share:.1%} used, exhausted for {empty:,} "
                         "subscribers")
        for currency, total in self.bills.get("billed_total", {}).items():
            lines.append(f"  billed incl. tax {currency:<16} {total:>14}")
        lines.append(f"  wall time        {self.wall_s:>11.1f}s   {rate:,.0f} events/s")
        lines.append(f"  balanced: read = rated + unrated + quarantined: {self.balanced()}")
        return "\n".join(lines)


MARKER = ".ratecycle-output"
RUNS = "runs"
# What ratecycle writes in an output folder; claimed folders hold nothing else of value.
_OUTPUTS = ("usage", "quarantine", "accounting.json", "rated", "bills.duckdb", "run.json",
            RUNS)


class OutputError(Exception):
    """An output folder that ratecycle must not write into."""


def claim_output_dir(out: Path, inputs: list[Path] = (), command: str = "run") -> None:
    """Make sure ``out`` may hold the outputs of `ratecycle <command>`: it is new, empty,
    or written by that command before (the marker file names it; an older marker names
    none), and no input lies where outputs go. Leftovers of a killed run are removed."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; give a folder for the outputs")
    if out.is_symlink() and not out.exists():
        raise OutputError(f"--out {out} is a link to {os.readlink(out)}, which does not exist; "
                          "make that folder or give another --out")
    _refuse_inside_output(out)
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise OutputError(f"{out} is not empty and was not written by ratecycle; choose a new "
                          "or empty folder (ratecycle replaces the folders it writes there)")
    if (out / MARKER).exists():
        found = re.search(r"`ratecycle (\w+)`", (out / MARKER).read_text(errors="replace"))
        if found and found.group(1) != command:
            raise OutputError(f"{out} holds the output of `ratecycle {found.group(1)}`; choose "
                              "another --out (each command writes to a folder of its own)")
    replaced = [(out / name).resolve() for name in _OUTPUTS]
    for path in filter(None, inputs):
        target = Path(path).resolve()
        if any(r == target or r in target.parents for r in replaced):
            raise OutputError(f"input {path} lies where the outputs go in {out} (usage/, "
                              "rated/, runs/ ...); write the outputs somewhere else")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(f"written by `ratecycle {command}`; its folders here are "
                              "replaced by the next run of that command into this folder\n")
    for stale in (*out.glob(".staging-*"), *out.glob(".ingest-*"), *out.glob(".rated-*")):
        shutil.rmtree(stale, ignore_errors=True)


def _refuse_inside_output(path: Path) -> None:
    """Refuse an output path inside a folder that ratecycle wrote: the next run into that
    folder replaces what is there, and what is put there would be taken for its own."""
    for folder in Path(path).resolve().parents:
        if (folder / MARKER).exists():
            raise OutputError(f"--out {path} lies inside {folder}, an output folder of "
                              "ratecycle; choose a path outside it")


def _check_inputs_exist(files: list[Path]) -> None:
    """Refuse a missing input file, in the words ingest would use."""
    for path in map(Path, files):
        if path.is_dir():
            raise SourceFileError(str(path), "is a folder; give the files in it")
        if not path.is_file():
            raise SourceFileError(str(path), MISSING)


def ingest_command(files: list[Path], opts: IngestOptions, out: Path, progress: Progress,
                   also_reads: list[Path | None] = ()):
    """`ratecycle ingest`: normalise ``files`` into ``out``; returns the row accounting."""
    _check_inputs_exist(files)  # before the output folder is made
    claim_output_dir(out, [*files, *filter(None, also_reads)], command="ingest")
    return ingest_to(files, opts, out, progress=progress)


def batch_of(files: list[Path]) -> str:
    """A batch is a set of input files: the same files again are a re-run of that batch
    (its output is replaced, e.g. after a catalog fix); other files are a new batch."""
    return run_id_of({"files": sorted([Path(p).name, file_digest(Path(p))] for p in files)})


def _known_events(out: Path, batch: str) -> pl.DataFrame:
    """Event ids already held by the other batches of ``out``."""
    parts = [p for p in sorted((out / RUNS).glob("*/rated/bucket=*/part-0.parquet"))
             if p.parents[2].name != batch]
    if not parts:
        return pl.DataFrame(schema={"event_id": pl.String, "batch_id": pl.String})
    return pl.concat([pl.scan_parquet(p).select("event_id", batch_id=pl.lit(p.parents[2].name))
                      for p in parts]).collect()


def other_runs(out: Path, batch: str) -> dict[str, RunRecord]:
    """The run records of the batches of ``out`` other than ``batch`` (whose run this one
    replaces), read once per run; a batch folder whose record cannot be read is refused."""
    return {folder.name: _run_record(folder)
            for folder in sorted(p for p in (out / RUNS).glob("*") if p.is_dir())
            if folder.name != batch}


def _check_accounts_like_other_batches(out: Path, others: dict[str, RunRecord],
                                       accounts_path: Path | None) -> None:
    """Refuse a run whose use of an accounts file differs from the other batches of
    ``out``: the bills are rebuilt from every batch with this run's accounts, so a night
    without them would bill every earlier customer without plan, taxes and discounts (and
    one with them, customers rated without accounts on the accounts' plans)."""
    for name, record in others.items():
        had = record.inputs.get("accounts") is not None
        if had and accounts_path is None:
            raise OutputError(
                f"{out} holds batch {name}, rated with an accounts file, and "
                "every bill there is rebuilt with this run's accounts: run again with "
                "--accounts (the accounts of this folder's customers), or write this "
                "batch to another --out")
        if not had and accounts_path is not None:
            raise OutputError(
                f"{out} holds batch {name}, rated without an accounts file, "
                f"and every bill there would be rebuilt with {accounts_path.name}: run "
                "again without --accounts, or write this batch to another --out")


def run_nightly(files: list[Path], opts: IngestOptions, catalog_path: Path, out_dir: Path, *,
                accounts_path: Path | None = None, workers: int = 1,
                progress: Progress | None = None,
                also_reads: list[Path | None] = ()) -> RunSummary:
    """Ingest ``files`` as one batch of ``out_dir``, rate it, and rebuild
    ``out_dir/bills.duckdb`` from every batch there. An event another batch already holds
    is quarantined as a duplicate. A batch is written in a staging folder and moved into
    ``runs/<batch>`` only when it is complete."""
    progress = progress or Progress(quiet=True)
    out_dir = Path(out_dir)
    _check_inputs_exist(files)  # before the catalog's seconds of loading
    catalog_path = Path(catalog_path).resolve()
    accounts_path = Path(accounts_path).resolve() if accounts_path else None
    catalog, _, accounts = _prepared(catalog_path, accounts_path)
    progress(f"catalog {catalog_path.name}: {len(catalog.model.plans)} plans, "
             f"{sum(len(d) for d in catalog.decks.values()):,} deck rows")
    batch = batch_of(files)
    others = other_runs(out_dir, batch)
    _check_accounts_like_other_batches(out_dir, others, accounts_path)
    claim_output_dir(out_dir, [*files, catalog_path, accounts_path, *also_reads])
    staging = out_dir / f".staging-{os.getpid()}"
    staging.mkdir()
    try:  # a batch that fails leaves no staging folder behind
        ing = ingest_to(files, opts, staging, known=_known_events(out_dir, batch),
                        progress=progress)
        progress(f"ingested {ing.read:,} rows: {ing.accepted:,} to rate, "
                 f"{sum(ing.unrated.values()):,} unrated, {sum(ing.quarantined.values()):,} "
                 "quarantined")

        inputs = {
            "batch": batch,
            "files": sorted([p.name, file_digest(Path(p))] for p in files),
            "format": opts.format,
            "options": repr((opts.timezone, opts.numbers, opts.subscriber_from, opts.billable_apps,
                             opts.column_map, opts.buckets)),
            "as_of": opts.ingested_at().isoformat() if opts.as_of else None,
            "buckets": opts.buckets,
            "catalog": catalog.digest,
            "accounts": accounts.digest if accounts else None,
        }
        run_id = run_id_of(inputs)
        earlier = [p for p in sorted((out_dir / RUNS).glob("*/rated/bucket=*/part-0.parquet"))
                   if p.parents[2].name != batch]
        same_buckets = all(others[p.parents[2].name].inputs.get("buckets") == opts.buckets
                           for p in earlier)
        summary = _rate_buckets(staging, staging / "rated", catalog_path, accounts_path, run_id,
                                _version(catalog, accounts), workers, progress, earlier,
                                same_buckets)
        summary.quarantined = Counter(ing.quarantined)
        summary.read += sum(summary.quarantined.values())
        if summary.read != ing.read:
            raise RuntimeError(f"row accounting broke: ingest read {ing.read}, rating saw "
                               f"{summary.read}; nothing was billed")
        (staging / "run.json").write_text(json.dumps(
            {"run_id": run_id, "batch": batch, "accounting": summary.accounting(),
             "inputs": inputs}, indent=2, sort_keys=True) + "\n")
        (out_dir / RUNS).mkdir(exist_ok=True)
        replace_path(staging, out_dir / RUNS / batch)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    progress("building bills: the rated usage summed into lines")
    runs = {**others, batch: _run_record(out_dir / RUNS / batch)}
    summary.bills = build_bills(
        out_dir,
        [p.relative_to(out_dir).as_posix()
         for p in sorted((out_dir / RUNS).glob("*/rated/bucket=*/part-0.parquet"))],
        [p.relative_to(out_dir).as_posix()
         for p in sorted((out_dir / RUNS).glob("*/quarantine/*.parquet"))],
        catalog,
        [runs[name] for name in sorted(runs)],
        accounts=accounts, as_of=opts.ingested_at(), progress=progress,
    )
    summary.wall_s = progress.elapsed()
    for name in ("run.json", "accounting.json"):
        shutil.copyfile(out_dir / RUNS / batch / name, out_dir / name)
    return summary


def _run_record(folder: Path) -> RunRecord:
    try:
        run = json.loads((folder / "run.json").read_text())
        return RunRecord(run_id=run["run_id"], batch=run["batch"],
                         as_of=run["inputs"].get("as_of") or "",
                         catalog_digest=run["inputs"]["catalog"], inputs=run["inputs"],
                         accounting=run["accounting"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OutputError(f"{folder / 'run.json'} cannot be read ({exc}); run that batch's "
                          f"files again into a new --out, or remove {folder} and run the "
                          "others again") from None


def _rate_buckets(usage_dir: Path, staging: Path, catalog_path: Path,
                  accounts_path: Path | None, run_id: str, version: str, workers: int,
                  progress: Progress, earlier: list[Path] = (),
                  same_buckets: bool = True) -> RunSummary:
    """Rate every bucket under ``usage_dir/usage`` into ``staging``; count the outcomes.
    ``earlier``: other batches' rated bucket files, given to the task of the same bucket
    (to every task when those batches were bucketed differently)."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    usage_files = sorted((usage_dir / "usage").glob("bucket=*/part-0.parquet"))
    prepared = None
    if workers > 1 and len(usage_files) > 1:
        prepared = staging / ".prepared.pickle"
        with prepared.open("wb") as handle:
            pickle.dump(_prepared(catalog_path, accounts_path, version), handle,
                        protocol=pickle.HIGHEST_PROTOCOL)
    tasks = [
        RateTask(int(path.parent.name.split("=")[1]), path,
                 staging / path.parent.name / "part-0.parquet", catalog_path, accounts_path,
                 run_id, version,
                 tuple(p for p in earlier
                       if p.parent.name == path.parent.name or not same_buckets),
                 prepared)
        for path in usage_files
    ]
    summary = RunSummary(run_id=run_id)
    results = run_tasks(tasks, workers, progress)
    if prepared is not None:
        prepared.unlink()
    for r in results:
        for status, reason, n in r["counts"]:
            if status == RATED:
                summary.rated += n
            else:
                summary.unrated[reason] += n
    summary.read = summary.rated + sum(summary.unrated.values())
    return summary


def rate_command(usage: Path, catalog_path: Path, out: Path, *, accounts_path: Path | None = None,
                 as_of=None, workers: int = 1, progress: Progress | None = None) -> RunSummary:
    """`ratecycle rate`: rate an ingest folder, a usage Parquet file or a usage CSV."""
    import tempfile

    progress = progress or Progress(quiet=True)
    usage, out = Path(usage), Path(out)
    catalog_path = Path(catalog_path).resolve()
    accounts_path = Path(accounts_path).resolve() if accounts_path else None
    catalog, _, accounts = _prepared(catalog_path, accounts_path)
    for read in filter(None, (usage, catalog_path, accounts_path)):
        if out.resolve() == read.resolve() or out.resolve() in read.resolve().parents:
            raise OutputError(f"--out {out} would replace {read}, which this command reads; "
                              "choose another --out")
    if not usage.is_dir():
        _check_inputs_exist([usage])
    if out.suffix.lower() == ".parquet":
        _refuse_inside_output(out)
    else:
        claim_output_dir(out, [usage], command="rate")  # refused before rating, not after
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        quarantined: Counter = Counter()
        if usage.is_dir():
            usage_dir = usage
            usage_files = sorted((usage / "usage").glob("bucket=*/*.parquet"))
            if not (usage / "usage").is_dir():
                raise OutputError(f"{usage}: no usage/ folder; is this a folder written by "
                                  "`ratecycle ingest`?")
            digests = sorted(
                [p.relative_to(usage).as_posix(), file_digest(p)]
                for p in (usage / "usage").glob("bucket=*/*.parquet"))
        else:
            fmt = "parquet" if usage.suffix.lower() == ".parquet" else "usage-csv"
            opts = IngestOptions(format=fmt, as_of=as_of)
            usage_dir = work / "ingested"
            quarantined = Counter(ingest_to([usage], opts, usage_dir,
                                            progress=progress).quarantined)
            usage_files = []
            digests = [[usage.name, file_digest(usage)]]
        run_id = run_id_of({"usage": digests, "catalog": catalog.digest,
                            "accounts": accounts.digest if accounts else None})
        summary = _rate_buckets(usage_dir, work / "rated", catalog_path, accounts_path, run_id,
                                _version(catalog, accounts), workers, progress)
        summary.quarantined = quarantined
        summary.read += sum(quarantined.values())
        parts = sorted((work / "rated").glob("bucket=*/part-0.parquet"))
        quarantine_src = work / "ingested" / "quarantine" / "part-0.parquet"
        if out.suffix.lower() == ".parquet":
            # always written, even empty, so an old result is never mistaken for this one
            frame = pl.concat([pl.read_parquet(p) for p in parts]) if parts else None
            if frame is None:
                frame = pl.read_parquet(usage_files[0]).clear() if usage_files else \
                    pl.DataFrame()
            frame.write_parquet(work / "rated.parquet")
            replace_path(work / "rated.parquet", out)
            quarantine_out = out.with_name(out.stem + ".quarantine.parquet")
            quarantine_out.unlink(missing_ok=True)
        else:
            for old in out.glob("bucket=*"):
                shutil.rmtree(old)
            for new in parts:
                new.parent.rename(out / new.parent.name)
            quarantine_out = out / "quarantine.parquet"
            quarantine_out.unlink(missing_ok=True)
        if quarantined:
            os.replace(quarantine_src, quarantine_out)
            progress(f"{sum(quarantined.values())} rows quarantined: {quarantine_out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary.wall_s = progress.elapsed()
    return summary
