"""The longest-prefix kernel against its pure-Python reference, plus pinned edge cases."""

from datetime import UTC, datetime

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.kernels.prefix import (
    ALWAYS,
    NO_MATCH,
    Trie,
    longest_prefix,
    longest_prefix_reference,
)
from rating.rate import _string_buffers


def us(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp() * 1_000_000)


def build(tariffs: list[list[tuple]]):
    """Tries the way rating/tariff.py builds them: one root per tariff, entries numbered in
    insertion order across tariffs; an entry is (prefix, effective_from[, band mask]).
    Returns (roots, trie arrays, reference table, entry masks)."""
    trie = Trie()
    roots, table, masks, count = [], [], [], 0
    for rows in tariffs:
        root = trie.new_root()
        roots.append(root)
        versions: dict[str, list[tuple[int, int]]] = {}
        for prefix, effective_from, *mask in rows:
            trie.insert(root, prefix, count, effective_from)
            versions.setdefault(prefix, []).append((effective_from, count))
            masks.append(mask[0] if mask else 1)
            count += 1
        table.append(versions)
    return (np.array(roots, dtype=np.int32), trie.arrays(), table,
            np.array(masks, dtype=np.uint64))


def match(tariffs, destinations, row_tariffs, at, row_masks=None):
    """(kernel answer, reference answer) for rows of (destination, tariff index, instant);
    ``row_masks``: the bands in force at each row's start (default: band 0)."""
    roots, arrays, table, entry_mask = build(tariffs)
    row_masks = [1] * len(destinations) if row_masks is None else row_masks
    offsets, data = _string_buffers(pl.Series(destinations, dtype=pl.String))
    row_roots = np.array([roots[t] if t >= 0 else -1 for t in row_tariffs], dtype=np.int32)
    kernel = longest_prefix(offsets, data, row_roots, np.array(at, dtype=np.int64),
                            np.array(row_masks, dtype=np.uint64), *arrays, entry_mask)
    reference = longest_prefix_reference(destinations, row_tariffs, at, row_masks, table,
                                         entry_mask)
    return kernel.tolist(), reference.tolist()


# --- the property ----------------------------------------------------------------------------

# a handful of instants so that rows often fall exactly on an effective_from
INSTANTS = [us(2025, 1, 1), us(2026, 1, 1), us(2026, 6, 1), us(2027, 1, 1)]
effective = st.one_of(st.just(ALWAYS), st.sampled_from(INSTANTS))
prefixes = st.text(alphabet="0123456789", max_size=4)  # includes the empty prefix
band_mask = st.integers(min_value=1, max_value=7)  # which of three bands an entry has
deck = st.lists(st.tuples(prefixes, effective, band_mask), max_size=25)
destination = st.one_of(
    st.text(alphabet="0123456789", max_size=8),
    st.text(alphabet="0123456789+aZ #٣５", max_size=8),  # '+', letters, non-ASCII digits
    st.just(""),
)
instant = st.one_of(
    st.sampled_from(INSTANTS),
    st.sampled_from([i - 1 for i in INSTANTS]),
    st.integers(min_value=us(2024, 1, 1), max_value=us(2028, 1, 1)),
)


@st.composite
def cases(draw):
    tariffs = draw(st.lists(deck, min_size=1, max_size=4))
    rows = draw(st.lists(
        st.tuples(destination, st.integers(min_value=-1, max_value=len(tariffs) - 1), instant,
                  st.integers(min_value=0, max_value=7)),
        max_size=40,
    ))
    return tariffs, tuple([r[k] for r in rows] for k in range(4)) if rows else ([], [], [], [])


@settings(max_examples=300, deadline=None)
@given(cases())
def test_kernel_matches_reference_on_random_decks(case):
    tariffs, (destinations, row_tariffs, at, row_masks) = case
    kernel, reference = match(tariffs, destinations, row_tariffs, at, row_masks)
    assert kernel == reference


# --- pinned edge cases -----------------------------------------------------------------------

UK = [("44", ALWAYS), ("447", ALWAYS), ("4479", ALWAYS)]  # entries 0, 1, 2
NOW = us(2026, 3, 1)


def test_empty_input():
    kernel, reference = match([UK], [], [], [])
    assert kernel == reference == []


def test_one_row():
    kernel, reference = match([UK], ["447700900001"], [0], [NOW])
    assert kernel == reference == [1]


def test_destination_equal_to_a_prefix_matches_it():
    kernel, reference = match([UK], ["447", "4479", "44"], [0, 0, 0], [NOW] * 3)
    assert kernel == reference == [1, 2, 0]


def test_no_match():
    kernel, reference = match([UK], ["33123", "4", ""], [0, 0, 0], [NOW] * 3)
    assert kernel == reference == [NO_MATCH] * 3


def test_row_without_a_tariff_matches_nothing():
    kernel, reference = match([[("", ALWAYS)]], ["447"], [-1], [NOW])
    assert kernel == reference == [NO_MATCH]


def test_empty_prefix_matches_anything_including_names():
    tariff = [("", ALWAYS), ("44", ALWAYS)]
    kernel, reference = match([tariff], ["internet.apn", "", "447", "33"], [0] * 4, [NOW] * 4)
    assert kernel == reference == [0, 0, 1, 0]


def test_a_non_digit_stops_the_walk():
    # "44-79..." walks 4, 4 and stops at '-': only "44" can match, not "4479"; a leading '+'
    # is skipped
    destinations = ["44-7900", "+4479", "4x479", "44٣", "++44"]
    kernel, reference = match([UK], destinations, [0] * 5, [NOW] * 5)
    assert kernel == reference == [0, 2, NO_MATCH, 0, NO_MATCH]


def test_a_prefix_counts_only_with_a_band_in_force_at_the_start():
    # 447 is priced only in band 1 (mask 0b10); at a start where only band 0 is in force,
    # the shorter 44 (band 0) is taken instead
    tariff = [("44", ALWAYS, 0b01), ("447", ALWAYS, 0b10)]
    kernel, reference = match([tariff], ["447700"] * 3, [0] * 3, [NOW] * 3, [0b01, 0b10, 0])
    assert kernel == reference == [0, 1, NO_MATCH]


def test_a_version_not_yet_in_force_falls_back_to_a_shorter_prefix():
    change = us(2026, 1, 1)
    tariff = [("44", ALWAYS), ("447", change)]  # entries 0, 1
    at = [change - 1, change, change + 1]
    kernel, reference = match([tariff], ["447700"] * 3, [0] * 3, at)
    assert kernel == reference == [0, 1, 1]


def test_the_latest_version_in_force_wins():
    tariff = [("44", us(2027, 1, 1)), ("44", ALWAYS), ("44", us(2026, 1, 1))]  # entries 0, 1, 2
    at = [us(2025, 6, 1), us(2026, 6, 1), us(2027, 6, 1)]
    kernel, reference = match([tariff], ["4420"] * 3, [0] * 3, at)
    assert kernel == reference == [1, 2, 0]


def test_tariffs_share_one_node_table_without_mixing():
    fr = [("33", ALWAYS)]  # entry 3, after UK's three entries
    kernel, reference = match([UK, fr], ["447", "447", "331", "331"], [0, 1, 0, 1], [NOW] * 4)
    assert kernel == reference == [1, NO_MATCH, NO_MATCH, 3]


def test_string_buffers_of_a_sliced_column_with_nulls():
    column = pl.Series(["x", "447", None, "33"]).slice(1, 3)
    offsets, data = _string_buffers(column)
    assert offsets.tolist() == [0, 3, 3, 5]
    assert bytes(data[: offsets[-1]]) == b"44733"
