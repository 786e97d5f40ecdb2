"""Oracle 2: the benchmark tariff as plain Polars joins, independent of ratecycle.

No Numba and none of ratecycle's rating code: one join per prefix length for the longest
prefix, an as-of join for the band at an instant, and the seconds of a call exploded over
the band segments it crosses. Money is Int64 nanos from the deck's decimal text to the
end, converted to Decimal(38, 9) once; each part of a call reaches 9 places half-up.
BUNDLE / GRADUATED: bundle depletion and graduated data tiers go here once the catalog
has them (see bench/generate.py).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl

from .oracle_spec import NO_RATE, NO_TARIFF, OUTPUT_SCHEMA, RATED, UNRATED, Spec, read_spec

MICROS = 1_000_000
FAR = 2**62
NANO = pl.lit(Decimal("0.000000001"), dtype=pl.Decimal(38, 9))


def _nanos(column: str) -> pl.Expr:
    return (pl.col(column).str.to_decimal(scale=9).cast(pl.Decimal(38, 9))
            * 1_000_000_000).cast(pl.Int64)


def read_deck(spec: Spec) -> pl.DataFrame:
    deck = pl.read_csv(spec.deck, infer_schema=False)
    if "connect_fee" not in deck.columns:
        deck = deck.with_columns(connect_fee=pl.lit("0"))
    return deck.select(
        "prefix", "band", rate_n=_nanos("rate"),
        connect_n=_nanos("connect_fee").fill_null(0),
    )


def segments(spec: Spec, first_day: date, last_day: date) -> pl.DataFrame:
    """Instants (µs, UTC) between which the band does not change: seg_from, seg_to, band,
    and their index ``seg``. The band rules are read on the local wall clock."""
    days = pl.date_range(first_day, last_day, "1d", eager=True).alias("day")
    edges = pl.DataFrame({"clock": spec.band_edges}, schema={"clock": pl.Int64})
    table = pl.DataFrame(days).join(edges, how="cross")
    band = pl.lit(None, pl.String)
    for b in reversed(spec.bands):  # the preferred band is tested first
        cond = (pl.col("day").dt.weekday().is_in(sorted(b.weekdays))
                & (pl.col("clock") >= b.start_s) & (pl.col("clock") < b.end_s))
        band = pl.when(cond).then(pl.lit(b.name)).otherwise(band)
    local = pl.col("day").cast(pl.Datetime("us")) + pl.duration(seconds=pl.col("clock"))
    # Band edges fall outside the hour a DST change skips or repeats (true of 00:00, 08:00
    # and 19:00 in every European zone); `raise` would tell if one did not.
    table = table.select(
        at=local.dt.replace_time_zone(spec.zone, ambiguous="raise", non_existent="raise")
        .dt.epoch("us"),
        band=band,
    ).sort("at")
    changes = table.filter(pl.col("band").ne_missing(pl.col("band").shift(1)))
    return changes.select(
        seg_from=pl.when(pl.int_range(pl.len()) == 0).then(-FAR).otherwise(pl.col("at")),
        seg_to=pl.col("at").shift(-1, fill_value=FAR),
        band="band",
    ).with_row_index("seg")


def longest_prefix(voice: pl.DataFrame, deck: pl.DataFrame) -> pl.Series:
    """The longest deck prefix of each destination (null: none), one join per length."""
    prefixes = deck.select("prefix").unique()
    lengths = sorted(prefixes["prefix"].str.len_chars().unique().to_list(), reverse=True)
    dest = voice.select(pl.col("dest"))
    found = pl.Series("prefix", [None] * len(voice), dtype=pl.String)
    for n in lengths:
        of_length = prefixes.filter(pl.col("prefix").str.len_chars() == n).with_columns(
            hit=pl.lit(True))
        joined = dest.with_columns(key=pl.col("dest").str.slice(0, n)).join(
            of_length, left_on="key", right_on="prefix", how="left", maintain_order="left")
        found = pl.select(pl.when(found.is_null() & joined["hit"].fill_null(False))
                          .then(joined["key"]).otherwise(found)).to_series()
    return found.alias("prefix")


def _half_up(numerator: pl.Expr, denominator: int) -> pl.Expr:
    """numerator / denominator rounded half up, for numerator >= 0 (integers only)."""
    return (2 * numerator + denominator) // (2 * denominator)


def rate_voice(voice: pl.DataFrame, spec: Spec, deck: pl.DataFrame,
               segs: pl.DataFrame) -> pl.DataFrame:
    """event_id, prefix, billed, amount_n of the voice calls with a prefix."""
    f, unit = spec.first_block, spec.voice_unit
    calls = voice.with_columns(prefix=longest_prefix(voice, deck)).filter(
        pl.col("prefix").is_not_null()).select("event_id", "prefix", "q", "t0")
    by_start = segs.select("seg_from", "seg", "band").sort("seg_from")
    calls = calls.sort("t0").join_asof(by_start, left_on="t0", right_on="seg_from",
                                       strategy="backward")
    calls = calls.join(deck, on=["prefix", "band"], how="left").select(
        "event_id", "prefix", "q", "t0", r0="rate_n", c0="connect_n")
    # Seconds F..q-1: the segments holding the first and the last of them, then one part
    # per segment in between (a call crosses few).
    long = calls.filter(pl.col("q") > f).with_columns(
        a=pl.col("t0") + f * MICROS, b=pl.col("t0") + (pl.col("q") - 1) * MICROS)
    long = long.sort("a").join_asof(by_start.select(seg_a="seg", seg_from="seg_from"),
                                    left_on="a", right_on="seg_from", strategy="backward")
    long = long.drop("seg_from").sort("b").join_asof(
        by_start.select(seg_b="seg", seg_from="seg_from"), left_on="b", right_on="seg_from",
        strategy="backward")
    parts = long.select("event_id", "prefix", "q", "t0",
                        seg=pl.int_ranges("seg_a", pl.col("seg_b") + 1)).explode("seg")
    parts = parts.join(segs, on="seg").with_columns(
        seconds=pl.min_horizontal("q", (pl.col("seg_to") - pl.col("t0") + MICROS - 1)
                                  // MICROS)
        - pl.max_horizontal(pl.lit(f), (pl.col("seg_from") - pl.col("t0") + MICROS - 1)
                            // MICROS)).filter(pl.col("seconds") > 0)
    parts = parts.join(deck, on=["prefix", "band"], how="left").group_by("event_id").agg(
        cost=_half_up(pl.col("rate_n") * pl.col("seconds"), unit).sum())
    calls = calls.join(parts, on="event_id", how="left")
    return calls.select(
        "event_id", "prefix",
        billed=pl.when(pl.col("q") > 0).then(pl.max_horizontal("q", pl.lit(f))).otherwise(0),
        amount_n=pl.when(pl.col("q") > 0).then(
            pl.col("c0") + _half_up(pl.col("r0") * f, unit) + pl.col("cost").fill_null(0))
        .otherwise(0),
    )


def _day_range(usage: pl.DataFrame) -> tuple[date, date]:
    voice = usage.filter(pl.col("service") == "voice")
    if voice.is_empty():
        return date(2000, 1, 1), date(2000, 1, 2)
    lo, hi = voice.select(
        lo=pl.col("started_at").min(),
        hi=(pl.col("started_at") + pl.duration(seconds=pl.col("quantity"))).max(),
    ).row(0)
    return lo.date() - timedelta(days=2), hi.date() + timedelta(days=2)


def rate(usage: pl.DataFrame, catalog: str | Path, keep_usage: bool = False) -> pl.DataFrame:
    """Rate a usage frame: the rated columns of OUTPUT_SCHEMA (after the usage columns
    with ``keep_usage``), in the input's row order."""
    spec = read_spec(catalog)
    deck = read_deck(spec)
    segs = segments(spec, *_day_range(usage))
    voice = usage.filter((pl.col("service") == "voice") & pl.col("unrated_reason").is_null())
    voice = voice.select(
        "event_id", q="quantity", t0=pl.col("started_at").dt.epoch("us"),
        dest=pl.col("destination").fill_null("").str.strip_prefix("+"))
    voice_rated = rate_voice(voice, spec, deck, segs)

    flat_billed, flat_amount = pl.lit(None, pl.Int64), pl.lit(None, pl.Int64)
    for service, c in spec.flats.items():
        billed = pl.when(pl.col("quantity") > 0).then(
            (pl.col("quantity") + c.increment - 1) // c.increment * c.increment).otherwise(0)
        amount = pl.when(pl.col("quantity") > 0).then(
            c.connect + _half_up(c.rate * billed, c.unit)).otherwise(0)
        is_it = pl.col("service") == service
        flat_billed = pl.when(is_it).then(billed).otherwise(flat_billed)
        flat_amount = pl.when(is_it).then(amount).otherwise(flat_amount)

    priced = ["voice", *spec.flats]
    is_voice = pl.col("service") == "voice"
    out = usage.join(voice_rated, on="event_id", how="left", maintain_order="left")
    out = out.with_columns(reason=pl.coalesce(
        pl.col("unrated_reason"),
        pl.when(~pl.col("service").is_in(priced)).then(pl.lit(NO_TARIFF)),
        pl.when(is_voice & pl.col("prefix").is_null()).then(pl.lit(NO_RATE)),
    ))
    ok = pl.col("reason").is_null()
    out = out.with_columns(
        status=pl.when(ok).then(pl.lit(RATED)).otherwise(pl.lit(UNRATED)),
        matched_prefix=pl.when(ok).then(
            pl.when(is_voice).then(pl.col("prefix")).otherwise(pl.lit(""))),
        billed_quantity=pl.when(ok).then(
            pl.when(is_voice).then(pl.col("billed")).otherwise(flat_billed)).otherwise(0),
        amount=pl.when(ok).then(
            pl.when(is_voice).then(pl.col("amount_n")).otherwise(flat_amount)
            .cast(pl.Decimal(38, 0)) * NANO),
    )
    rated_cols = [pl.col(c).cast(t) for c, t in OUTPUT_SCHEMA.items()]
    if keep_usage:
        usage_cols = [c for c in usage.columns if c not in ("unrated_reason", "event_id")]
        return out.select(rated_cols[0], *usage_cols, *rated_cols[1:])
    return out.select(rated_cols)


def rate_files(files: list[str | Path], catalog: str | Path, out: str | Path) -> None:
    """End to end: usage Parquet files in, one rated Parquet file out."""
    usage = pl.read_parquet([str(p) for p in files])
    rate(usage, catalog, keep_usage=True).write_parquet(out)
