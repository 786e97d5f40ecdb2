"""Oracle 2: the benchmark tariff as plain Polars joins, independent of ratecycle.

No Numba and none of ratecycle's rating code: one join per prefix length for the longest
prefix, an as-of join for the band at an instant, and the seconds of a call exploded over
the band segments it crosses. Money is Int64 nanos from the deck's decimal text to the
end, converted to Decimal(38, 9) once; each part of a call reaches 9 places half-up.

Bundles: a running total of billed seconds per subscriber and billing period (``cum_sum``
over the group, rows sorted by start and event id) says what each call finds left; the
call is covered from its start, and each part pays for its seconds past the covered ones.
Graduated tiers: the same running total of billed units gives each event's ``before``;
its cost is G(before + q) - G(before), G summed tier by tier as whole units times the
rate plus the remainder's exact cost, rounded half up once.

Spans: a row per part (a call's first block, slot 0, in the band at its start; then one
part per band segment its later seconds cross, slot 1; a flat event's one part in the
band ``all``), gathered per event into a list of structs in offset order; a call's amount
is its connect fee (unless waived) plus its parts. The other rated columns come from the
catalog and the accounts (tariff ``plan/service``, deck, rate and connect fee at the
start, rate unit, increments, currency, customer) and the billing period's bounds. It
writes every rated column of ratecycle's rated usage (``oracle_spec.OUTPUT_SCHEMA``),
with a run id of its own (a digest of the catalog, deck and accounts).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl

from .oracle_spec import (
    FLAT_BAND,
    NO_RATE,
    NO_SUBSCRIPTION,
    NO_TARIFF,
    OUTPUT_SCHEMA,
    RATED,
    UNRATED,
    Flat,
    Spec,
    read_accounts,
    read_spec,
    run_id,
)

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
        "prefix", "band", "destination", rate_n=_nanos("rate"),
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


def _bundle_use(calls: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """Add ``covered`` (seconds the plan's bundle covers, from the call's start) and
    ``waive`` (no connect fee) to calls with ``billed``, in event order per subscriber and
    billing period."""
    allowance = {p: b.allowance for p, b in spec.bundles.items()}
    waives = {p: b.waive_connect for p, b in spec.bundles.items()}
    keys = ["subscriber_id", "period", "plan_id"]
    calls = calls.sort(*keys, "t0", "event_id").with_columns(
        allowance=pl.col("plan_id").replace_strict(allowance, default=0, return_dtype=pl.Int64))
    calls = calls.with_columns(
        before=pl.col("billed").cum_sum().over(keys) - pl.col("billed"))
    calls = calls.with_columns(covered=pl.min_horizontal(
        "billed", (pl.col("allowance") - pl.col("before")).clip(lower_bound=0)))
    return calls.with_columns(waive=pl.col("plan_id").replace_strict(
        waives, default=False, return_dtype=pl.Boolean)
        & (pl.col("covered") > 0) & (pl.col("covered") == pl.col("billed")))


def rate_voice(voice: pl.DataFrame, spec: Spec, deck: pl.DataFrame,
               segs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The voice calls with a prefix (``voice``: event_id, q, t0, dest, subscriber_id,
    period, plan_id): event_id, prefix, billed, covered, dest_name, r0 and c0 (rate and
    connect fee at the start), amount_n; and their spans, a row per part: event_id,
    offset_s, band, slot, billed, cost_n."""
    f, unit = spec.first_block, spec.voice_unit
    calls = voice.with_columns(prefix=longest_prefix(voice, deck)).filter(
        pl.col("prefix").is_not_null())
    by_start = segs.select("seg_from", "seg", "band").sort("seg_from")
    calls = calls.sort("t0").join_asof(by_start, left_on="t0", right_on="seg_from",
                                       strategy="backward")
    calls = calls.join(deck, on=["prefix", "band"], how="left").select(
        "event_id", "prefix", "destination", "q", "t0", "subscriber_id", "period", "plan_id",
        "band", r0="rate_n", c0="connect_n",
        billed=pl.when(pl.col("q") > 0).then(pl.max_horizontal("q", pl.lit(f))).otherwise(0))
    calls = _bundle_use(calls, spec)
    # Seconds F..q-1: the segments holding the first and the last of them, then one part
    # per segment in between (a call crosses few).
    long = calls.filter(pl.col("q") > f).with_columns(
        a=pl.col("t0") + f * MICROS, b=pl.col("t0") + (pl.col("q") - 1) * MICROS)
    long = long.sort("a").join_asof(by_start.select(seg_a="seg", seg_from="seg_from"),
                                    left_on="a", right_on="seg_from", strategy="backward")
    long = long.drop("seg_from").sort("b").join_asof(
        by_start.select(seg_b="seg", seg_from="seg_from"), left_on="b", right_on="seg_from",
        strategy="backward")
    parts = long.select("event_id", "prefix", "q", "t0", "covered",
                        seg=pl.int_ranges("seg_a", pl.col("seg_b") + 1)).explode("seg")
    parts = parts.join(segs, on="seg").with_columns(
        end=pl.min_horizontal("q", (pl.col("seg_to") - pl.col("t0") + MICROS - 1) // MICROS),
        begin=pl.max_horizontal(pl.lit(f), (pl.col("seg_from") - pl.col("t0") + MICROS - 1)
                                // MICROS)).filter(pl.col("end") > pl.col("begin"))
    # what the bundle leaves of a part: its seconds after the first `covered` of the call
    parts = parts.with_columns(uncovered=(pl.col("end") - pl.max_horizontal(
        "begin", "covered")).clip(lower_bound=0))
    parts = parts.join(deck, on=["prefix", "band"], how="left").select(
        "event_id", "band", offset_s="begin", slot=pl.lit(1), billed=pl.col("end")
        - pl.col("begin"), cost_n=_half_up(pl.col("rate_n") * pl.col("uncovered"), unit))
    # the first block: slot 0, F seconds in the band at the start, less what is covered
    first = calls.filter(pl.col("q") > 0).select(
        "event_id", "band", offset_s=pl.lit(0), slot=pl.lit(0), billed=pl.lit(f),
        cost_n=_half_up(pl.col("r0") * (pl.lit(f) - pl.col("covered")).clip(lower_bound=0),
                        unit))
    spans = pl.concat([first, parts], how="vertical_relaxed")
    calls = calls.join(spans.group_by("event_id").agg(cost=pl.col("cost_n").sum()),
                       on="event_id", how="left")
    return calls.select(
        "event_id", "prefix", "billed", "covered", "r0", "c0", dest_name="destination",
        amount_n=pl.when(pl.col("q") > 0).then(
            pl.when(pl.col("waive")).then(0).otherwise(pl.col("c0")) + pl.col("cost"))
        .otherwise(0),
    ), spans


def graduated_price(flat: Flat, x: pl.Expr) -> pl.Expr:
    """G(x): the first ``x`` units of a period under ``flat.tiers``, in nanos, rounded half
    up once (whole rate units exactly, the remainders summed before the one rounding)."""
    whole, rest, low = pl.lit(0, pl.Int64), pl.lit(0, pl.Int64), 0
    for up_to, rate in flat.tiers:
        inside = (x - low).clip(lower_bound=0)
        if up_to is not None:
            inside = pl.min_horizontal(inside, pl.lit(up_to - low))
        whole = whole + rate * (inside // flat.unit)
        rest = rest + rate * (inside % flat.unit)
        if up_to is None:
            break
        low = up_to
    return whole + _half_up(rest, flat.unit)


def tier_of(flat: Flat, x: pl.Expr) -> pl.Expr:
    """1-based tier holding unit number ``x`` (bounds inclusive); 0 for x = 0."""
    tier = pl.lit(len(flat.tiers))
    for k in range(len(flat.tiers) - 2, -1, -1):
        tier = pl.when(x <= flat.tiers[k][0]).then(k + 1).otherwise(tier)
    return pl.when(x > 0).then(tier).otherwise(0).cast(pl.Int32)


def _day_range(usage: pl.DataFrame) -> tuple[date, date]:
    voice = usage.filter(pl.col("service") == "voice")
    if voice.is_empty():
        return date(2000, 1, 1), date(2000, 1, 2)
    lo, hi = voice.select(
        lo=pl.col("started_at").min(),
        hi=(pl.col("started_at") + pl.duration(seconds=pl.col("quantity"))).max(),
    ).row(0)
    return lo.date() - timedelta(days=2), hi.date() + timedelta(days=2)


def _period_bounds(spec: Spec) -> dict[str, pl.Expr]:
    """The calendar month in the catalog's zone holding the start: its bounds as UTC
    instants (µs) and as local dates."""
    local = pl.col("started_at").dt.convert_time_zone(spec.zone).dt.replace_time_zone(None)
    month = local.dt.truncate("1mo")
    following = month.dt.offset_by("1mo")

    def instant(wall: pl.Expr) -> pl.Expr:
        return (wall.dt.replace_time_zone(spec.zone, non_existent="raise", ambiguous="raise")
                .dt.convert_time_zone("UTC").cast(pl.Datetime("us", "UTC")))

    return {"period": instant(month), "period_end": instant(following),
            "cycle_start": month.dt.date(), "cycle_end": following.dt.date()}


def _money(nanos: pl.Expr) -> pl.Expr:
    """Integer nanos as Decimal(38, 9), exactly."""
    return (nanos.cast(pl.Decimal(38, 0)) * NANO).cast(pl.Decimal(38, 9))


def _per_service(values: dict[str, object], dtype: pl.DataType) -> pl.Expr:
    """A value per service (null for a service not named)."""
    expr = pl.lit(None, dtype)
    for service, value in values.items():
        expr = pl.when(pl.col("service") == service).then(pl.lit(value, dtype)).otherwise(expr)
    return expr


def rate(usage: pl.DataFrame, catalog: str | Path, keep_usage: bool = False,
         accounts: str | Path | None = None) -> pl.DataFrame:
    """Rate a usage frame: the rated columns of OUTPUT_SCHEMA (after the usage columns
    with ``keep_usage``), in the input's row order. ``accounts``: the accounts Parquet
    (who holds which plan); without it every subscriber holds the default plan."""
    spec = read_spec(catalog)
    deck = read_deck(spec)
    segs = segments(spec, *_day_range(usage))
    held = read_accounts(accounts).select("subscriber_id", "plan_id", "customer_id")
    work = usage.select("event_id", "subscriber_id", "service", "started_at", "quantity",
                        "destination", "unrated_reason").join(
        held, on="subscriber_id", how="left", maintain_order="left").with_columns(
        plan_id=pl.col("plan_id").fill_null(pl.lit(spec.default_plan, pl.String)),
        customer_id=pl.col("customer_id").fill_null(pl.col("subscriber_id")),
        **_period_bounds(spec))
    voice = work.filter((pl.col("service") == "voice") & pl.col("unrated_reason").is_null()
                        & pl.col("plan_id").is_not_null())
    voice = voice.select(
        "event_id", "subscriber_id", "period", "plan_id", q="quantity",
        t0=pl.col("started_at").dt.epoch("us"),
        dest=pl.col("destination").fill_null("").str.strip_prefix("+"))
    voice_rated, voice_spans = rate_voice(voice, spec, deck, segs)

    priced = ["voice", *spec.flats]
    is_voice = pl.col("service") == "voice"
    out = work.join(voice_rated, on="event_id", how="left", maintain_order="left")
    out = out.with_columns(reason=pl.coalesce(
        pl.col("unrated_reason"),
        pl.when(pl.col("plan_id").is_null()).then(pl.lit(NO_SUBSCRIPTION)),
        pl.when(~pl.col("service").is_in(priced)).then(pl.lit(NO_TARIFF)),
        pl.when(is_voice & pl.col("prefix").is_null()).then(pl.lit(NO_RATE)),
    ))
    ok = pl.col("reason").is_null()
    # Flat services: billed units in F/F increments; a graduated charge prices each event
    # by the subscriber's billed units of the charge before it in the period.
    out = out.with_columns(flat_billed=pl.when(pl.col("quantity") > 0).then(
        pl.col("quantity")).otherwise(0))
    flat_billed, flat_cost = pl.lit(None, pl.Int64), pl.lit(None, pl.Int64)
    flat_tier = pl.lit(None, pl.Int32)
    keys = ["subscriber_id", "period", "plan_id", "service"]
    for service, c in spec.flats.items():
        is_it = pl.col("service") == service
        billed = (pl.col("flat_billed") + c.increment - 1) // c.increment * c.increment
        if c.tiers:
            out = out.with_columns(_q=pl.when(is_it & ok).then(billed).otherwise(0))
            out = out.with_columns(_before=(pl.col("_q").cum_sum() - pl.col("_q"))
                                   .over(keys, order_by=["started_at", "event_id"]))
            after = pl.col("_before") + pl.col("_q")
            cost = graduated_price(c, after) - graduated_price(c, pl.col("_before"))
            flat_tier = pl.when(is_it).then(tier_of(c, after)).otherwise(flat_tier)
        else:
            cost = _half_up(c.rate * billed, c.unit)
        flat_billed = pl.when(is_it).then(billed).otherwise(flat_billed)
        flat_cost = pl.when(is_it).then(cost).otherwise(flat_cost)
    flat_connect = _per_service({s: c.connect for s, c in spec.flats.items()}, pl.Int64)
    out = out.with_columns(flat_billed=flat_billed, flat_cost=flat_cost, flat_tier=flat_tier)
    # spans: a voice call's parts, in offset order; a flat event with units is one part of
    # the band "all"; a rated event without any has none (an empty list), unrated: null
    flat_spans = out.filter(ok & ~is_voice & (pl.col("flat_billed") > 0)).select(
        "event_id", band=pl.lit(FLAT_BAND), offset_s=pl.lit(0), slot=pl.lit(0),
        billed="flat_billed", cost_n="flat_cost")
    spans = pl.concat([voice_spans, flat_spans], how="vertical_relaxed").group_by(
        "event_id").agg(spans=pl.struct(
            "band", slot=pl.col("slot").cast(pl.Int32),
            version=pl.lit(None, pl.Datetime("us", "UTC")),
            billed_quantity=pl.col("billed").cast(pl.Int64),
            cost=_money(pl.col("cost_n"))).sort_by("offset_s"))
    out = out.join(spans, on="event_id", how="left", maintain_order="left")
    no_spans = pl.lit(pl.Series([[]], dtype=OUTPUT_SCHEMA["spans"]))
    no_draws = pl.lit(pl.Series([[]], dtype=OUTPUT_SCHEMA["bundles"]))
    bundle_name = pl.col("plan_id").replace_strict(
        {p: b.name for p, b in spec.bundles.items()}, default=None, return_dtype=pl.String)
    when_rated = {  # the explanation of a rated event (null when unrated)
        "tariff": pl.col("plan_id") + "/" + pl.col("service"),
        "deck": pl.when(is_voice).then(pl.lit(spec.deck_name)),
        "rate": _money(pl.when(is_voice).then(pl.col("r0")).otherwise(
            _per_service({s: c.rate for s, c in spec.flats.items()}, pl.Int64))),
        "rate_unit": pl.when(is_voice).then(pl.lit(spec.voice_per)).otherwise(
            _per_service({s: c.per for s, c in spec.flats.items()}, pl.String)),
        "connect_fee": _money(pl.when(is_voice).then(pl.col("c0")).otherwise(flat_connect)),
        "increments": pl.when(is_voice).then(pl.lit(spec.voice_increments)).otherwise(
            _per_service({s: f"{c.increment}/{c.increment}" for s, c in spec.flats.items()},
                         pl.String)),
    }
    out = out.with_columns(
        status=pl.when(ok).then(pl.lit(RATED)).otherwise(pl.lit(UNRATED)),
        matched_prefix=pl.when(ok).then(
            pl.when(is_voice).then(pl.col("prefix")).otherwise(pl.lit(""))),
        plan_id=pl.when(ok).then(pl.col("plan_id")),
        destination_name=pl.when(ok).then(
            pl.when(is_voice).then(pl.col("dest_name")).otherwise(
                _per_service({s: c.destination for s, c in spec.flats.items()}, pl.String))),
        **{name: pl.when(ok).then(value) for name, value in when_rated.items()},
        rate_id=pl.lit(None, pl.String),  # no named rates
        billed_quantity=pl.when(ok).then(
            pl.when(is_voice).then(pl.col("billed")).otherwise("flat_billed")).otherwise(0),
        bundle_quantity=pl.when(ok & is_voice).then(pl.col("covered")).otherwise(0),
        bundles=pl.when(ok & is_voice & (pl.col("covered") > 0)).then(pl.concat_list(
            pl.struct(bundle=bundle_name, quantity="covered"))).otherwise(no_draws),
        tier=pl.when(ok & ~is_voice).then("flat_tier"),
        amount=_money(pl.when(ok).then(
            pl.when(is_voice).then(pl.col("amount_n"))
            .when(pl.col("flat_billed") > 0).then(flat_connect + pl.col("flat_cost"))
            .otherwise(0))),
        flags=pl.lit(None, pl.String),  # no maximum cost
        currency=pl.lit(spec.currency),
        period_start="period",
        late=pl.lit(False),  # no collection window: no period closes before its usage
        usage_period_start="period",
        spans=pl.when(ok).then(pl.col("spans").fill_null(no_spans)),
        run_id=pl.lit(run_id("polars-oracle", spec, catalog, accounts)),
    )
    rated_cols = [pl.col(c).cast(t) for c, t in OUTPUT_SCHEMA.items()]
    if keep_usage:
        usage_cols = [c for c in usage.columns if c not in ("unrated_reason", "event_id")]
        return usage.select(pl.col("event_id"), *usage_cols).hstack(
            out.select(rated_cols[1:]))
    return out.select(rated_cols)


def rate_files(files: list[str | Path], catalog: str | Path, out: str | Path,
               accounts: str | Path | None = None) -> None:
    """End to end: usage Parquet files in, one rated Parquet file out."""
    usage = pl.read_parquet([str(p) for p in files])
    rate(usage, catalog, keep_usage=True, accounts=accounts).write_parquet(out)
