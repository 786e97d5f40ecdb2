"""Pricing the spans of events exactly, in integer nanos, and each event's amount.

An event's spans are consecutive (``first[i]:first[i + 1]``). A span costs its billed units
at its slot's rate, rounded half up to nanos once (native), or, under CGRateS's rounding
(``cgrates_step``: nanos per unit of its G decimals), each increment's cost rounded half up
to G decimals, times its increments. A span whose exact cost would leave 64-bit integers
(more units than its slot's ``max_billed``) costs nothing and marks its event ``overflow``.
An event that pays (``has``) takes the connect fee, the cap and the total rounding of the
rate in force at its start (``rate_of``); one that does not pays nothing.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from rules.money import ROUNDING_METHODS, round_nanos

NO_LIMIT = -1
NATIVE = 0  # cgrates_step of the native rounding
POW10 = np.array([10**k for k in range(19)], dtype=np.int64)
# the catalog's rounding methods by their number in rules.money (constants to Numba)
HALF_UP, HALF_EVEN, UP, DOWN = (ROUNDING_METHODS.index(m)
                                for m in ("half_up", "half_even", "up", "down"))


@nb.njit(nogil=True, cache=True, inline="always")
def _round(num, den, method):
    """num / den rounded by ROUNDING_METHODS[method] (den > 0)."""
    q = num // den  # floor, as in rules.money.round_nanos
    r = num - q * den
    if method == DOWN:
        return q
    if method == UP:
        return q + (1 if r != 0 else 0)
    twice = 2 * r
    if method == HALF_UP:  # halves away from zero
        return q + (1 if twice > den or (twice == den and num >= 0) else 0)
    return q + (1 if twice > den or (twice == den and q % 2 == 1) else 0)  # HALF_EVEN


@nb.njit(parallel=True, nogil=True, cache=True)
def price_events(first, slot, count, billed, slot_rate, slot_unit, slot_increment,
                 slot_max, cgrates_step, rate_of, has, connect, max_cost, flag_max_cost,
                 round_method, round_decimals):
    """(cost per span, amount per event, flagged: over a cap that flags, overflow)."""
    n = len(rate_of)
    cost = np.zeros(len(slot), dtype=np.int64)
    amount = np.zeros(n, dtype=np.int64)
    flagged = np.zeros(n, dtype=np.bool_)
    overflow = np.zeros(n, dtype=np.bool_)
    for i in nb.prange(n):
        total = 0
        for k in range(first[i], first[i + 1]):
            s = slot[k]
            if billed[k] > slot_max[s]:
                overflow[i] = True
                continue
            if cgrates_step == NATIVE:
                c = _round(slot_rate[s] * billed[k], slot_unit[s], HALF_UP)
            else:
                each = _round(slot_rate[s] * slot_increment[s], slot_unit[s] * cgrates_step,
                              HALF_UP)
                c = count[k] * (each * cgrates_step)
            cost[k] = c
            total += c
        if not has[i]:
            continue
        r = rate_of[i]
        a = total + connect[r]
        cap = max_cost[r]
        if cap != NO_LIMIT and a > cap:
            if flag_max_cost[r]:
                flagged[i] = True
            else:
                a = cap
        m = round_method[r]
        if m >= 0:
            step = POW10[9 - round_decimals[r]]
            a = _round(a, step, m) * step
        amount[i] = a
    return cost, amount, flagged, overflow


def price_events_reference(first, slot, count, billed, slot_rate, slot_unit, slot_increment,
                           slot_max, cgrates_step, rate_of, has, connect, max_cost,
                           flag_max_cost, round_method, round_decimals):
    """The same in whole-array numpy steps."""
    n = len(rate_of)
    row = np.repeat(np.arange(n), np.diff(first))
    rate, unit = slot_rate[slot], slot_unit[slot]
    too_big = billed > slot_max[slot]
    overflow = np.zeros(n, dtype=bool)
    overflow[row[too_big]] = True
    billed, count = np.where(too_big, 0, billed), np.where(too_big, 0, count)
    if cgrates_step == NATIVE:
        cost = round_nanos(rate * billed, unit)
    else:
        step = cgrates_step
        cost = count * (round_nanos(rate * slot_increment[slot], unit * step) * step)
    total = np.zeros(n, dtype=np.int64)
    np.add.at(total, row, cost)
    amount = np.where(has, total + connect[rate_of], 0)
    cap = np.where(has, max_cost[rate_of], NO_LIMIT)
    over = (cap != NO_LIMIT) & (amount > cap)
    flagged = over & flag_max_cost[rate_of]
    amount = np.where(over & ~flagged, cap, amount)
    method = np.where(has, round_method[rate_of], NO_LIMIT)
    for m in np.unique(method[method >= 0]):
        rows = method == m
        step = 10 ** (9 - round_decimals[rate_of[rows]])
        amount[rows] = round_nanos(amount[rows], step, ROUNDING_METHODS[m]) * step
    return cost, amount, flagged, overflow
