"""Rating a batch of usage: plan, tariff, longest prefix, spans, exact amounts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from rules import Accounts, Catalog
from rules.money import nanos_to_arrow

from . import cycle
from . import schema as s
from .kernels.bundles import uncovered_spans
from .kernels.prefix import longest_prefix
from .kernels.price import NATIVE, price_events
from .kernels.segments import segment_of
from .kernels.spans import NO_BAND, split_spans
from .periods import billing_periods
from .plans import plan_candidates, subscriber_codes, subscription_of
from .tariff import CompiledTariff

MICROS = 1_000_000
MAX_SECONDS = 10**12  # keeps instants in int64 µs; such calls overflow their money anyway


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


class _Calendars:
    """Every tariff's band calendar over the batch's time range, concatenated."""

    def __init__(self, compiled: CompiledTariff, lo_us: int, hi_us: int) -> None:
        froms, masks, lo, hi = [], [], [], []
        count = 0
        for t in range(len(compiled.tariff_bands)):
            seg_from, seg_mask = compiled.calendar(t, lo_us, hi_us)
            lo.append(count)
            count += len(seg_from)
            hi.append(count)
            froms.append(seg_from)
            masks.append(seg_mask)
        self.seg_from = np.concatenate(froms) if froms else np.zeros(0, np.int64)
        self.seg_mask = np.concatenate(masks) if masks else np.zeros(0, np.uint64)
        self.lo = np.array(lo, dtype=np.int64)
        self.hi = np.array(hi, dtype=np.int64)

    def segment(self, tariff: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Index of the segment holding each instant in its tariff's calendar (-1: none)."""
        return segment_of(tariff.astype(np.int64, copy=False), at, self.seg_from, self.lo,
                          self.hi)


@dataclass(frozen=True)
class Spans:
    """The parts of a batch's events, flat: span k belongs to event ``row[k]``, an event's
    spans are consecutive and in event order."""

    row: np.ndarray
    entry: np.ndarray
    binding: np.ndarray
    slot: np.ndarray
    count: np.ndarray  # increments
    billed: np.ndarray  # quantity units
    per_event: np.ndarray  # per event: its number of spans
    status: np.ndarray  # per event: OK or NO_BAND
    first: np.ndarray  # per event: the binding in force at its start (-1: none)


SPAN_CHUNKS = 64  # rows split in this many chunks, each writing its spans in its own room
ROOM_PER_ROW = 3  # room per row at first: a call's first block, its seconds, a band change


def split_events(compiled: CompiledTariff, calendars: _Calendars, tariff: np.ndarray,
                 entry: np.ndarray, at: np.ndarray, qty: np.ndarray,
                 seg0: np.ndarray | None = None) -> Spans:
    """Run the span kernel over events whose tariff and matched entry are known (-1: skip).
    ``seg0``: each event's calendar segment at its start, when the caller has it."""
    n = len(at)
    if seg0 is None:
        seg0 = calendars.segment(tariff, at)
    args = (at, qty, tariff, entry, seg0, compiled.tariff_split, calendars.hi, calendars.seg_from,
            calendars.seg_mask, compiled.entry["bind_lo"], compiled.entry["bind_hi"],
            compiled.entry["next"], compiled.entry["next_from"], compiled.binding["bit"],
            compiled.binding["weight"], compiled.binding["from"], compiled.binding["rate"],
            compiled.rate["slot_lo"], compiled.rate["slot_hi"], compiled.rate["min_billed"],
            compiled.rate["free_below"], compiled.slot["from"], compiled.slot["increment"])
    chunk_rows = np.linspace(0, n, SPAN_CHUNKS + 1).astype(np.int64)
    per_row = ROOM_PER_ROW
    while True:  # one pass, again with twice the room while some chunk's spans do not fit
        room = chunk_rows * per_row
        # row, entry, binding and slot in 32 bits, increments and units in 64
        out = [np.empty(int(room[-1]), t) for t in (np.int32,) * 4 + (np.int64,) * 2]
        counts, status, first, written = split_spans(chunk_rows, room, *args, *out)
        if (written >= 0).all():
            break
        per_row *= 2
    kept = [slice(a, a + w) for a, w in zip(room[:-1].tolist(), written.tolist(), strict=True)]
    return Spans(*(np.concatenate([o[k] for k in kept]) for o in out), counts, status, first)


def _match(usage, compiled, candidates, calendars, at, offsets, data):
    """Try each candidate plan in turn for rows still unmatched: (plan code, tariff, entry,
    whether some candidate has a tariff, the calendar segment of each match's start)."""
    n = len(usage)
    plan = np.full(n, -1, dtype=np.int64)
    segment = np.full(n, -1, dtype=np.int64)
    tariff = np.full(n, -1, dtype=np.int64)
    entry = np.full(n, -1, dtype=np.int32)
    any_tariff = np.zeros(n, dtype=bool)
    blocked = usage["unrated_reason"].is_not_null().to_numpy()
    service = compiled.service_codes(usage["service"])
    for candidate in candidates:
        t = compiled.tariff_index(candidate, service)
        open_rows = (entry < 0) & ~blocked & (t >= 0)
        any_tariff |= open_rows
        seg = calendars.segment(np.where(open_rows, t, -1), at)
        roots = np.where(open_rows, compiled.roots[np.maximum(t, 0)], -1).astype(np.int32)
        mask = np.where(seg >= 0, calendars.seg_mask[np.maximum(seg, 0)], 0).astype(np.uint64)
        found = longest_prefix(offsets, data, roots, at, mask, *compiled.trie,
                               compiled.entry["mask"])
        took = open_rows & (found >= 0)
        entry = np.where(took, found, entry)
        tariff = np.where(took, t, tariff)
        plan = np.where(took, candidate, plan)
        segment = np.where(took, seg, segment)
    return plan, tariff, entry, any_tariff, segment


def _index(values: np.ndarray, hidden: np.ndarray) -> pl.Series:
    """``values`` as gather indices, null where ``hidden``: a gather gives null there."""
    return pl.Series(values, dtype=pl.Int64).set(pl.Series(hidden), None)


def _price(compiled: CompiledTariff, first, o_slot, o_count, o_billed, rate_of, has):
    """Cost of each span and amount of each row, exactly, with the catalog's rounding
    (kernels/price.py). ``first``: each row's first span; ``rate_of``: the rate in force
    at each row's start, whose connect fee, cap and total rounding apply (CGRateS charges
    the connect fee from the first span only); ``has``: the rows that pay it."""
    slot, r = compiled.slot, compiled.rate
    g = compiled.cgrates_decimals
    return price_events(first, o_slot, o_count, o_billed, slot["rate"], slot["unit"],
                        slot["increment"], slot["max_billed"],
                        NATIVE if g is None else 10 ** (9 - g), rate_of, has, r["connect"],
                        r["max_cost"], r["flag_max_cost"], r["round_method"],
                        r["round_decimals"])


def rate_batch(usage: pl.DataFrame, catalog: Catalog, compiled: CompiledTariff,
               accounts: Accounts | None, run_id: str,
               earlier: pl.DataFrame | None = None) -> pl.DataFrame:
    """Rate one batch (a bucket of subscribers). Returns usage with the rated columns; every
    input row comes out once, as `rated` or `unrated` with a reason. ``earlier``: rated rows
    of earlier batches of the same subscribers, whose bundle and tier use this batch
    continues from."""
    # One chunk per column: a frame whose columns are chunked differently (the usage as
    # read, the rated columns built whole) is copied into single chunks by every select.
    usage = usage.rechunk()
    n = len(usage)
    at = usage["started_at"].dt.epoch("us").fill_null(0).to_numpy()
    qty = usage["quantity"].fill_null(0).to_numpy()
    lo, hi = (int(at.min()), int(at.max())) if n else (0, 0)
    calendars = _Calendars(compiled, lo, hi)  # matching needs the bands at each start
    offsets, data = _string_buffers(usage["destination"])
    subscriber = subscriber_codes(usage["subscriber_id"]) if accounts is not None else None
    held = (subscription_of(usage, accounts, compiled.plan_ids, subscriber)
            if accounts is not None else None)
    candidates = plan_candidates(usage, catalog, accounts, held)
    plan_code, tariff, entry, any_tariff, seg0 = _match(usage, compiled, candidates,
                                                        calendars, at, offsets, data)
    plan = pl.Series(compiled.plan_ids, dtype=pl.String).gather(
        _index(plan_code, plan_code < 0)).alias("plan_id")
    # events split at band changes need the calendar up to their end (a data session's
    # quantity is bytes, not seconds: it reaches no later)
    splits = (tariff >= 0) & compiled.tariff_split[np.maximum(tariff, 0)]
    if splits.any():
        reach = int((at + np.minimum(qty, MAX_SECONDS) * MICROS)[splits].max())
        if reach > hi:
            longer = _Calendars(compiled, lo, reach)
            if not all(np.array_equal(getattr(longer, k), getattr(calendars, k))
                       for k in ("lo", "hi", "seg_from", "seg_mask")):
                seg0 = None  # the segments of the matches are numbered anew
            calendars = longer

    spans = split_events(compiled, calendars, tariff, entry, at, qty, seg0)
    row, o_entry, o_bind, o_slot = spans.row, spans.entry, spans.binding, spans.slot
    o_count, o_billed, status, first_bind = spans.count, spans.billed, spans.status, spans.first
    first_span = np.concatenate([[0], np.cumsum(spans.per_event)])  # each row's first
    rate_of = np.where(first_bind >= 0, compiled.binding["rate"][np.maximum(first_bind, 0)], 0)
    billed = np.zeros(n, dtype=np.int64)  # integers throughout (bincount would use floats)
    np.add.at(billed, row, o_billed)
    no_band = status == NO_BAND
    periods = billing_periods(usage, plan, catalog, accounts, held)
    own_start = periods["usage_period_start"]
    # bands and destination names only where a bundle is limited to some
    bundles = [b for p in catalog.model.plans for b in p.bundles]
    nothing = pl.repeat(None, n, dtype=pl.String, eager=True)
    band_at_start = pl.Series(compiled.binding_band, dtype=pl.String).gather(
        _index(first_bind, first_bind < 0)) if any(b.bands for b in bundles) else nothing
    destination = compiled.entries["destination_name"].gather(
        _index(entry, entry < 0)) if any(b.destinations for b in bundles) else nothing
    counters = cycle.Counters(
        codes=subscriber, period=own_start.dt.epoch("us").to_numpy(), plan=plan_code,
        at=at, event_id=usage["event_id"], subscriber_id=usage["subscriber_id"],
        own_start=own_start, plan_ids=compiled.plan_ids)
    draws = cycle.draw(counters, usage["service"], band_at_start, destination, billed,
                       (entry >= 0) & ~no_band, catalog, earlier)
    u_billed, u_count = (uncovered_spans(row, o_billed, o_count,
                                         compiled.slot["increment"][o_slot], draws.covered)
                         if draws.covered.any() else (o_billed, o_count))
    cost, amount, flagged, overflow = _price(compiled, first_span, o_slot, u_count, u_billed,
                                             rate_of, (billed > 0) & ~draws.waive_connect)
    rated = (entry >= 0) & ~no_band & ~overflow
    tiered, tier_cost, tier = cycle.graduated(counters, tariff, compiled.tariff_charge,
                                              billed - draws.covered, rated, earlier)
    if tiered.any():  # one span per event (tiered charges do not split)
        amount = np.where(tiered, amount + tier_cost, amount)
        spans_tiered = np.flatnonzero(tiered[row])
        cost[spans_tiered] = tier_cost[row[spans_tiered]]
    # rating's reason as a code per row (the first that holds), then one gather of names
    why = np.select([(candidates[0] < 0) & ~any_tariff, ~any_tariff, entry < 0,
                     no_band, overflow], np.arange(1, 6), 0)
    reason = usage["unrated_reason"].fill_null(pl.Series(
        [None, s.NO_SUBSCRIPTION, s.NO_TARIFF, s.NO_RATE, s.NO_BAND, s.OVERFLOW],
        dtype=pl.String).gather(why))

    # explanation columns gathered for rated events only (a null index gives null)
    explained = compiled.entries.drop("effective_from").select(
        pl.all().gather(_index(entry, ~rated)))
    rate_explained = compiled.rate_explained.select(pl.all().gather(_index(rate_of, ~rated)))

    spans = _spans_column(compiled, o_entry, o_bind, o_slot, o_billed, cost, first_span, rated)
    currency_of = {p.id: catalog.plan_currency(p) for p in catalog.model.plans}
    out = usage.with_columns(
        *explained.get_columns(),
        *rate_explained.get_columns(),
        *periods.get_columns(),
        status=pl.when(pl.Series(rated)).then(pl.lit(s.RATED)).otherwise(pl.lit(s.UNRATED)),
        reason=reason,
        plan_id=pl.when(pl.Series(rated)).then(plan),
        billed_quantity=pl.Series(np.where(rated, billed, 0), dtype=pl.Int64),
        bundle_quantity=pl.Series(np.where(rated, draws.covered, 0), dtype=pl.Int64),
        bundles=draws.column,
        tier=pl.when(pl.Series(tiered & rated)).then(pl.Series(tier, dtype=pl.Int32)),
        amount=pl.from_arrow(nanos_to_arrow(amount, rated)),
        flags=pl.when(pl.Series(flagged & rated)).then(pl.lit("max_cost")),
        spans=spans,
        currency=(pl.lit(catalog.currency) if set(currency_of.values()) <= {catalog.currency}
                  else plan.replace_strict(currency_of, default=catalog.currency,
                                           return_dtype=pl.String)),
        run_id=pl.lit(run_id),
    )
    usage_cols = [c for c in usage.columns if c != "unrated_reason"]
    return out.select(*usage_cols, *[pl.col(c).cast(t) for c, t in s.RATED_COLUMNS.items()])


def _spans_column(compiled, o_entry, o_bind, o_slot, o_billed, cost, first_span, rated):
    """The parts of each event as a list of structs (null for unrated events)."""
    version = compiled.entries["effective_from"].to_arrow()
    struct = pa.StructArray.from_arrays(
        [
            s.string_views(compiled.binding_band, o_bind),
            pa.array(compiled.slot["place"][o_slot], pa.int32()),
            version.take(pa.array(o_entry)) if len(o_entry) else pa.array(
                [], version.type),
            pa.array(o_billed, pa.int64()),
            nanos_to_arrow(cost),
        ],
        names=["band", "slot", "version", "billed_quantity", "cost"],
    )
    lists = pa.ListArray.from_arrays(pa.array(first_span.astype(np.int32)), struct,
                                     mask=pa.array(~rated) if len(rated) else None)
    return pl.from_arrow(lists).alias("spans")
