"""`ratecycle demo`: generate a realistic month and run the nightly job on it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ingest import IngestOptions

from .demo_data import generate_demo
from .job import Progress, RunSummary, claim_output_dir, run_nightly


def run_demo(out: str | Path, *, subscribers: int = 10_000, events: int = 1_000_000,
             workers: int = 1, quiet: bool = False) -> RunSummary:
    """Generate the demo month under ``out/input`` and bill it into ``out``."""
    out = Path(out)
    claim_output_dir(out)
    progress = Progress(quiet=quiet)
    progress(f"generating {events:,} events for {subscribers:,} subscribers")
    inputs = generate_demo(out / "input", subscribers=subscribers, events=events,
                           progress=progress)
    # A fixed 'now' just after the month makes the demo run reproducible.
    opts = IngestOptions(format="parquet", as_of=datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    return run_nightly([inputs.usage], opts, inputs.catalog, out,
                       accounts_path=inputs.accounts, workers=workers, progress=progress)
