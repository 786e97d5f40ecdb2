"""Rating a batch of usage: plan, tariff, longest prefix, increments, exact amounts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from rules import Accounts, Catalog
from rules.money import INT64_MAX, nanos_to_arrow, round_nanos

from . import schema as s
from .errors import OverflowRisk
from .kernels.prefix import longest_prefix
from .tariff import CompiledTariff


def _string_buffers(column: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and bytes of a String column, as the kernel reads them (nulls are empty)."""
    arrow = column.fill_null("").to_arrow()
    arrow = (arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow)
    arrow = arrow.cast(pa.large_string())
    if arrow.offset:
        arrow = pa.concat_arrays([arrow])  # a fresh array starts at offset 0
    _, offsets, data = arrow.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[: len(arrow) + 1]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return offsets, data


def billed_quantity(quantity, min_billed, first, nxt) -> np.ndarray:
    """Quantity after the minimum and the increments: the first block, then whole next blocks.
    Zero stays zero."""
    q = np.maximum(quantity, min_billed)
    beyond = np.maximum(q - first, 0)
    billed = np.where(q <= first, first, first + -(-beyond // nxt) * nxt)
    return np.where(quantity > 0, billed, 0)


def _plan_of(usage: pl.DataFrame, catalog: Catalog, accounts: Accounts | None) -> pl.Series:
    default = catalog.default_plan.id if catalog.default_plan else None
    if accounts is None:
        return pl.Series("plan_id", [default] * len(usage), dtype=pl.String)
    joined = usage.select("subscriber_id").join(
        accounts.plans, on="subscriber_id", how="left", maintain_order="left"
    )
    return joined["plan_id"].fill_null(default) if default else joined["plan_id"]


def _cycles(started: pl.Expr, zone: pl.Expr, zones: list[str]) -> tuple[pl.Expr, pl.Expr]:
    """Calendar month of each instant in its plan's zone, as local dates [start, end)."""
    start = pl.lit(None, pl.Date)
    for z in zones:
        local = started.dt.convert_time_zone(z).dt.date().dt.month_start()
        start = pl.when(zone == z).then(local).otherwise(start)
    return start, start.dt.offset_by("1mo")


def rate_batch(usage: pl.DataFrame, catalog: Catalog, compiled: CompiledTariff,
               accounts: Accounts | None, run_id: str) -> pl.DataFrame:
    """Rate one batch (a bucket of subscribers). Returns usage with the rated columns; every
    input row comes out once, as `rated` or `unrated` with a reason."""
    n = len(usage)
    plan = _plan_of(usage, catalog, accounts)
    tariff = compiled.tariff_index(plan, usage["service"])
    has_prior = usage["unrated_reason"].is_not_null().to_numpy()
    roots = np.where((tariff >= 0) & ~has_prior, compiled.roots[np.maximum(tariff, 0)], -1)
    offsets, data = _string_buffers(usage["destination"])
    at = usage["started_at"].dt.epoch("us").fill_null(0).to_numpy()
    entry = longest_prefix(offsets, data, roots.astype(np.int32), at, *compiled.trie)

    reason = usage.select(pl.coalesce(
        pl.col("unrated_reason"),
        pl.when(plan.is_null()).then(pl.lit(s.NO_SUBSCRIPTION)),
        pl.when(pl.Series(tariff < 0)).then(pl.lit(s.NO_TARIFF)),
        pl.when(pl.Series(entry < 0)).then(pl.lit(s.NO_RATE)),
    )).to_series()
    rated = entry >= 0

    e = compiled.entries[np.maximum(entry, 0)] if n else compiled.entries.clear()
    qty = usage["quantity"].to_numpy()
    rate = e["rate_nanos"].to_numpy()
    billed = billed_quantity(qty, e["min_billed"].to_numpy(), e["first_increment"].to_numpy(),
                             e["next_increment"].to_numpy())
    billed = np.where(rated, billed, 0)
    # Row by row: rate x billed must stay inside int64 (checked without overflowing).
    too_big = rated & (billed > INT64_MAX // np.maximum(rate, 1))
    if too_big.any():
        i = int(np.argmax(too_big))
        raise OverflowRisk(
            f"event {usage['event_id'][i]!r}: rate {rate[i]} nanos x {billed[i]} billed units "
            "leaves exact 64-bit arithmetic; check the usage's quantity unit and the tariff's "
            "`per`"
        )
    cost = round_nanos(rate * billed, e["unit_size"].to_numpy())
    connect = e["connect_nanos"].to_numpy()
    amount = np.where(billed > 0, cost + connect, 0)

    def money(values: np.ndarray) -> pl.Series:
        return pl.from_arrow(nanos_to_arrow(values, rated))

    zone_of = {p.id: catalog.plan_zone(p) for p in catalog.model.plans}
    zone = plan.replace_strict(zone_of, default=catalog.model.timezone, return_dtype=pl.String)
    explained = e.select(
        "tariff", "deck", "matched_prefix", "destination_name", "rate_unit", "increments",
        "effective_from",
    ).get_columns()
    out = usage.with_columns(
        status=pl.Series(np.where(rated, s.RATED, s.UNRATED), dtype=pl.String),
        reason=reason,
        plan_id=plan,
        _zone=zone,
        _rated=pl.Series(rated),
        rate=money(rate),
        connect_fee=money(connect),
        billed_quantity=pl.Series(billed, dtype=pl.Int64),
        amount=money(amount),
        _cost=money(np.where(billed > 0, cost, 0)),
    ).with_columns(*explained)
    zones = sorted(set(zone_of.values()))
    cycle_start, cycle_end = _cycles(pl.col("started_at"), pl.col("_zone"), zones)
    hide = ["tariff", "deck", "matched_prefix", "destination_name", "rate_unit", "increments"]
    out = out.with_columns(
        [pl.when(pl.col("_rated")).then(pl.col(c)).alias(c) for c in hide],
        currency=pl.lit(catalog.currency),
        cycle_start=cycle_start,
        cycle_end=cycle_end,
        spans=pl.when(pl.col("_rated")).then(pl.concat_list(pl.struct(
            band=pl.lit("all"),
            slot=pl.lit(0, pl.Int32),
            version=pl.col("effective_from"),
            billed_quantity=pl.col("billed_quantity"),
            cost=pl.col("_cost"),
        ))),
        run_id=pl.lit(run_id),
    )
    usage_cols = [c for c in usage.columns if c != "unrated_reason"]
    return out.select(*usage_cols, *[pl.col(c).cast(t) for c, t in s.RATED_COLUMNS.items()])
