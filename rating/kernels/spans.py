"""Splitting events into priced parts (spans): by band, rate slot and tariff version.

An event walks from offset 0 (quantity units into it) to its billed quantity. At each
offset the band in force (for split services, at the instant start + offset seconds;
otherwise at the start) picks the binding of the destination, whose rate's slot for that
offset gives the increment. Whole increments are taken up to the next slot start, band
change or version change; the increment that straddles one is priced where it starts,
so slot offsets count from the start of the event across bands. Consecutive increments
with the same binding, slot and version form one span.

The kernel returns, per span: entry (version), binding, slot, number of increments and
billed units. Money is computed from these by the caller (rules.money rounds).
"""

from __future__ import annotations

import numba as nb
import numpy as np

OK = 0
NO_BAND = 1  # a part of the event falls in no band of its destination
MICROS = 1_000_000
NEVER = np.iinfo(np.int64).max


@nb.njit(cache=True, inline="always")
def _best_binding(e, mask, e_bind_lo, e_bind_hi, b_bit, b_weight, b_from):
    """Among the entry's bindings in force under ``mask``: highest weight, then the latest
    band start (CGRateS: "higher weight wins, then the latest start")."""
    best = -1
    for b in range(e_bind_lo[e], e_bind_hi[e]):
        if b_bit[b] & mask:
            if best < 0 or b_weight[b] > b_weight[best] or (
                b_weight[b] == b_weight[best] and b_from[b] > b_from[best]
            ):
                best = b
    return best


@nb.njit(parallel=True, nogil=True, cache=True)
def split_spans(chunk_rows, room, start, qty, tariff, entry0, seg0, t_split, t_seg_hi,
                seg_from, seg_mask, e_bind_lo, e_bind_hi, e_next, e_next_from, b_bit, b_weight,
                b_from, b_rate,
                r_slot_lo, r_slot_hi, r_min_billed, r_free_below, s_from, s_inc,
                o_row, o_entry, o_bind, o_slot, o_count, o_billed):
    """One pass over rows in chunks (rows ``chunk_rows[c]`` to ``chunk_rows[c + 1]``), in
    parallel: chunk c writes its rows' spans, in row order, from ``room[c]`` on and must
    end by ``room[c + 1]``. Returns spans per row, status, the binding in force at each
    row's start (-1: none), and the spans each chunk wrote (-1: they did not fit; the
    caller gives more room and runs again). Row i is of tariff ``tariff[i]``, which splits
    its events at band changes if ``t_split``, and whose calendar segments end before
    ``t_seg_hi``; rows whose ``entry0`` or tariff is -1 are skipped."""
    n = len(start)
    counts = np.zeros(n, dtype=np.int64)
    status = np.zeros(n, dtype=np.int8)
    first = np.full(n, -1, dtype=np.int64)
    chunks = len(chunk_rows) - 1
    written = np.zeros(chunks, dtype=np.int64)
    # The walk is written out in the loop body: a call per row to a helper taking these
    # arrays costs a reference count change per array and call, shared between threads.
    for c in nb.prange(chunks):
        w = room[c]  # where the next span goes
        fits = True
        for i in range(chunk_rows[c], chunk_rows[c + 1]):
            e = entry0[i]
            t = tariff[i]
            if e < 0 or t < 0:
                continue
            seg = seg0[i]
            seg_hi = t_seg_hi[t]
            t0 = start[i]
            q = qty[i]
            splits = t_split[t]
            b = _best_binding(e, seg_mask[seg], e_bind_lo, e_bind_hi, b_bit, b_weight, b_from)
            first[i] = b
            if b < 0:
                status[i] = NO_BAND
                continue
            rate = b_rate[b]
            if q < r_free_below[rate] or q <= 0:
                continue
            target = max(q, r_min_billed[rate])
            o = 0
            k = 0  # spans of row i so far, at w - k ... w - 1
            last_e, last_b, last_slot = -1, -1, -1  # the span being extended
            while o < target:
                if splits:
                    t = t0 + o * MICROS
                    while seg + 1 < seg_hi and seg_from[seg + 1] <= t:
                        seg += 1
                    while e_next[e] >= 0 and e_next_from[e] <= t:
                        e = e_next[e]
                b = _best_binding(e, seg_mask[seg], e_bind_lo, e_bind_hi, b_bit, b_weight,
                                  b_from)
                if b < 0:
                    status[i] = NO_BAND
                    break
                rate = b_rate[b]
                slot = r_slot_lo[rate]
                while slot + 1 < r_slot_hi[rate] and s_from[slot + 1] <= o:
                    slot += 1
                limit = target
                if slot + 1 < r_slot_hi[rate]:
                    limit = min(limit, s_from[slot + 1])
                if splits:
                    if seg + 1 < seg_hi:
                        limit = min(limit, (seg_from[seg + 1] - t0 + MICROS - 1) // MICROS)
                    if e_next[e] >= 0:
                        limit = min(limit, (e_next_from[e] - t0 + MICROS - 1) // MICROS)
                inc = s_inc[slot]
                count = max(1, (limit - o + inc - 1) // inc)
                if k > 0 and e == last_e and b == last_b and slot == last_slot:
                    o_count[w - 1] += count
                    o_billed[w - 1] += count * inc
                elif w < room[c + 1]:
                    o_row[w] = i
                    o_entry[w] = e
                    o_bind[w] = b
                    o_slot[w] = slot
                    o_count[w] = count
                    o_billed[w] = count * inc
                    w += 1
                    k += 1
                    last_e, last_b, last_slot = e, b, slot
                else:
                    fits = False
                    break
                o += count * inc
            counts[i] = k
            if not fits:
                break
        written[c] = w - room[c] if fits else -1
    return counts, status, first, written


def split_spans_reference(compiled, tariff: int, entry: int, start_us: int, qty: int):
    """The specification, one increment at a time: at each increment's start (the event's
    start for services that do not split) take the version in force, evaluate the bands'
    rules on the local wall clock, pick the binding and the slot, and take one increment.
    Returns ([(entry, binding, slot, increments, billed)], status, first binding)."""
    from zoneinfo import ZoneInfo

    from rating.calendar import active_mask, from_micros

    zone = ZoneInfo(compiled.tariff_zone[tariff])
    bands = compiled.tariff_bands[tariff]
    split = bool(compiled.tariff_split[tariff])
    ent, bind, rate, slot = compiled.entry, compiled.binding, compiled.rate, compiled.slot

    def binding_at(e: int, us: int) -> int:
        mask = active_mask(bands, from_micros(us).astimezone(zone), compiled.holidays)
        live = [b for b in range(ent["bind_lo"][e], ent["bind_hi"][e])
                if int(bind["bit"][b]) & mask]
        return max(live, key=lambda b: (bind["weight"][b], bind["from"][b], -b), default=-1)

    first = binding_at(entry, start_us)
    if first < 0:
        return [], NO_BAND, -1
    r = bind["rate"][first]
    if qty < rate["free_below"][r] or qty <= 0:
        return [], OK, first
    target = max(qty, int(rate["min_billed"][r]))
    spans: list[list[int]] = []
    e, offset = entry, 0
    while offset < target:
        at = start_us + offset * MICROS if split else start_us
        while split and ent["next"][e] >= 0 and ent["next_from"][e] <= at:
            e = int(ent["next"][e])
        b = binding_at(e, at)
        if b < 0:
            return [tuple(s) for s in spans], NO_BAND, first
        r = bind["rate"][b]
        s = max(k for k in range(rate["slot_lo"][r], rate["slot_hi"][r])
                if slot["from"][k] <= offset)
        inc = int(slot["increment"][s])
        if spans and spans[-1][:3] == [e, b, s]:
            spans[-1][3] += 1
            spans[-1][4] += inc
        else:
            spans.append([e, b, s, 1, inc])
        offset += inc
    return [tuple(s) for s in spans], OK, first
