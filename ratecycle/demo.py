"""`ratecycle demo`: generate a realistic month and run the nightly job on it."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from ingest import IngestOptions
from ingest.pipeline import replace_path

from .demo_data import DemoInputs, generate_demo
from .job import (
    OutputError,
    Progress,
    RunSummary,
    batch_of,
    claim_output_dir,
    other_runs,
    run_nightly,
)


def run_demo(out: str | Path, *, subscribers: int = 10_000, events: int = 1_000_000,
             workers: int = 1, quiet: bool = False) -> RunSummary:
    """Generate the demo month under ``out/input`` and bill it into ``out``."""
    out = Path(out)
    claim_output_dir(out)
    progress = Progress(quiet=quiet)
    progress(f"generating {events:,} events for {subscribers:,} subscribers")
    # generated beside the folder's input first: a month of other arguments is refused
    # before it overwrites the input of the month already billed there
    fresh = out / f".staging-input-{os.getpid()}"
    made = generate_demo(fresh, subscribers=subscribers, events=events, progress=lambda line:
                         progress(line.replace(str(fresh), str(out / "input"))))
    batch = batch_of([made.usage])
    try:
        if others := other_runs(out, batch):
            raise OutputError(
                f"{out} holds the bills of another demo month (batch {min(others)}), which "
                "this one would be billed with; choose another --out, or remove that folder "
                "first")
    except OutputError:
        shutil.rmtree(fresh)  # the month already there keeps its input
        raise
    replace_path(fresh, out / "input")
    inputs = DemoInputs(*(out / "input" / path.name for path in
                          (made.usage, made.catalog, made.accounts, made.deck)))
    # A fixed 'now' just after the month makes the demo run reproducible.
    opts = IngestOptions(format="parquet", as_of=datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    return run_nightly([inputs.usage], opts, inputs.catalog, out,
                       accounts_path=inputs.accounts, workers=workers, progress=progress)
