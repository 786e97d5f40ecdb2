"""Pricing spans and events: the kernel against its whole-array reference, plus pinned
cases of rounding, caps and overflow."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.kernels.price import NATIVE, NO_LIMIT, price_events, price_events_reference
from rules.money import ROUNDING_METHODS

SLOTS = {  # rate nanos, unit, increment, max billed
    "rate": np.array([1_000_000, 7, 33_333_333], dtype=np.int64),
    "unit": np.array([1, 60, 1_000], dtype=np.int64),
    "increment": np.array([1, 60, 1_000], dtype=np.int64),
    "max": np.array([10**6, 10**9, 10**5], dtype=np.int64),
}


def rates(connect, cap, flag, method, decimals):
    return {k: np.array(v, dtype=t) for k, v, t in (
        ("connect", connect, np.int64), ("max_cost", cap, np.int64),
        ("flag_max_cost", flag, np.bool_), ("round_method", method, np.int64),
        ("round_decimals", decimals, np.int64))}


def both(events, rate, cgrates_step=NATIVE):
    """events: (rate, pays, [(slot, count, billed)]) -> kernel and reference results."""
    first = np.cumsum([0] + [len(spans) for _, _, spans in events]).astype(np.int64)
    spans = [s for _, _, parts in events for s in parts]
    slot, count, billed = (np.array([s[k] for s in spans], dtype=np.int64) for k in range(3))
    args = (first, slot, count, billed, SLOTS["rate"], SLOTS["unit"], SLOTS["increment"],
            SLOTS["max"], cgrates_step, np.array([e[0] for e in events], dtype=np.int64),
            np.array([e[1] for e in events], dtype=bool), rate["connect"], rate["max_cost"],
            rate["flag_max_cost"], rate["round_method"], rate["round_decimals"])
    got = [a.tolist() for a in price_events(*args)]
    assert got == [a.tolist() for a in price_events_reference(*args)]
    return got


def test_per_minute_rate_billed_by_the_second_rounds_half_up_once_per_span():
    # 7 nanos per 60 s, 90 s billed: 10.5 nanos -> 11; connect fee 5
    cost, amount, flagged, overflow = both([(0, True, [(1, 1, 90)])],
                                           rates([5], [NO_LIMIT], [False], [NO_LIMIT], [9]))
    assert (cost, amount, flagged, overflow) == ([11], [16], [False], [False])


def test_cap_limits_or_flags_and_total_rounding_applies_after_it():
    rate = rates([0, 0], [2_500_000, 2_500_000], [False, True], [ROUNDING_METHODS.index("up"),
                                                                  NO_LIMIT], [2, 9])
    _, amount, flagged, _ = both([(0, True, [(0, 3, 3)]), (1, True, [(0, 3, 3)])], rate)
    assert amount == [10_000_000, 3_000_000] and flagged == [False, True]


def test_an_event_that_does_not_pay_keeps_its_span_costs_but_no_amount():
    cost, amount, _, _ = both([(0, False, [(0, 2, 2)])],
                              rates([9], [NO_LIMIT], [False], [NO_LIMIT], [9]))
    assert cost == [2_000_000] and amount == [0]


def test_a_span_beyond_64_bit_money_costs_nothing_and_marks_its_event():
    cost, _, _, overflow = both([(0, True, [(0, 1, 5), (2, 1, 10**6)]), (0, True, [])],
                                rates([0], [NO_LIMIT], [False], [NO_LIMIT], [9]))
    assert cost == [5_000_000, 0] and overflow == [True, False]


def test_cgrates_rounds_each_increment_to_its_decimals():
    # 33_333_333 nanos per 1000 units, increment 1000, G = 4: 0.0333 per increment
    cost, _, _, _ = both([(0, True, [(2, 3, 3_000)])],
                         rates([0], [NO_LIMIT], [False], [NO_LIMIT], [9]), cgrates_step=10**5)
    assert cost == [3 * 33_300_000]


span = st.tuples(st.integers(0, 2), st.integers(0, 50), st.integers(0, 2 * 10**6))
event = st.tuples(st.integers(0, 2), st.booleans(), st.lists(span, max_size=4))


@settings(max_examples=300, deadline=None)
@given(st.lists(event, min_size=1, max_size=12),
       st.lists(st.integers(-10**9, 10**9), min_size=3, max_size=3),
       st.lists(st.sampled_from([NO_LIMIT, 0, 10**6, 10**9]), min_size=3, max_size=3),
       st.lists(st.booleans(), min_size=3, max_size=3),
       st.lists(st.integers(NO_LIMIT, 3), min_size=3, max_size=3),
       st.lists(st.integers(0, 9), min_size=3, max_size=3),
       st.sampled_from([NATIVE, 10**5, 10**7]))
def test_matches_reference(events, connect, cap, flag, method, decimals, cgrates_step):
    both(events, rates(connect, cap, flag, method, decimals), cgrates_step)
