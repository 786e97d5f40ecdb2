"""The span-split kernel and the whole rating of a bucket, on a generated 200k-event bucket
with the benchmark tariff (bench/generate.py). Run with `make bench`.

Each benchmark warms up first: Numba compiles on the first call (or loads its cache).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from bench.generate import Params, generate, usage_files
from rating import compile_catalog, rate_batch
from rating.plans import plan_candidates
from rating.rate import MICROS, _Calendars, _match, _string_buffers, split_events
from rules import load_accounts, load_catalog

BUCKET_EVENTS = 200_000


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """One bucket of ~200k events, its catalog (compiled) and accounts."""
    folder = tmp_path_factory.mktemp("bench-month")
    generate(Params(BUCKET_EVENTS, buckets=1), folder)
    catalog = load_catalog(folder / "catalog.yaml")
    accounts = load_accounts(folder / "accounts.parquet", catalog)
    usage = pl.read_parquet(usage_files(folder)[0])
    return usage, catalog, compile_catalog(catalog), accounts


@pytest.fixture(scope="module")
def matched(month):
    """What the span kernel takes: each event's tariff and matched entry, start, quantity."""
    usage, catalog, compiled, accounts = month
    at = usage["started_at"].dt.epoch("us").to_numpy()
    qty = usage["quantity"].to_numpy()
    calendars = _Calendars(compiled, int(at.min()), int((at + qty * MICROS).max()))
    offsets, data = _string_buffers(usage["destination"])
    candidates = plan_candidates(usage, catalog, accounts)
    _, tariff, entry, _, _ = _match(usage, compiled, candidates, calendars, at, offsets, data)
    return compiled, calendars, tariff, entry, at, qty


def test_span_split_200k(benchmark, matched):
    compiled, calendars, tariff, entry, at, qty = matched
    split_events(compiled, calendars, tariff, entry, at, qty)  # compile / load from cache
    spans = benchmark(split_events, compiled, calendars, tariff, entry, at, qty)
    rows_with_spans = np.unique(spans.row)
    assert len(rows_with_spans) > 0.9 * len(at)
    # calls crossing a band change come out as more than one span after the first block
    assert np.bincount(spans.row).max() >= 3


def test_rate_bucket_200k(benchmark, month):
    usage, catalog, compiled, accounts = month
    rate_batch(usage.head(2000), catalog, compiled, accounts, "warm-up")
    rated = benchmark.pedantic(rate_batch, args=(usage, catalog, compiled, accounts, "bench"),
                               rounds=3, iterations=1)
    assert len(rated) == len(usage)
    assert (rated["status"] == "rated").mean() > 0.99
