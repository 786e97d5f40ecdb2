"""Exact money: parsing text into nanos, the one rounding function, Arrow decimals."""

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.money import (
    INT64_MAX,
    MoneyError,
    arrow_to_nanos,
    nanos_to_arrow,
    nanos_to_decimal,
    parse_decimal,
    round_nanos,
    round_to_minor,
    to_nanos,
)

INT64_MIN = -INT64_MAX - 1


# --- parsing ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0,1175", Decimal("0.1175")),
        ("1.000,5", Decimal("1000.5")),
        ("12.345.678,9", Decimal("12345678.9")),
        ("1,5", Decimal("1.5")),
        ("0.25", Decimal("0.25")),  # a decimal point is still read when no comma is present
        (" 7 ", Decimal("7")),
    ],
)
def test_parse_decimal_with_decimal_comma(text, expected):
    assert parse_decimal(text, decimal_comma=True) == expected


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("0,1175", 117_500_000),
        ("1.000,5", 1_000_500_000_000),
        ("0,000000001", 1),
        ("-0,5", -500_000_000),
    ],
)
def test_to_nanos_with_decimal_comma(text, nanos):
    assert to_nanos(text, decimal_comma=True) == nanos


@pytest.mark.parametrize(
    ("value", "nanos"),
    [
        ("0.0121", 12_100_000),
        ("0.000000001", 1),
        ("1.500000000", 1_500_000_000),
        ("-3.25", -3_250_000_000),
        (7, 7_000_000_000),
        (Decimal("0.10"), 100_000_000),
        ("9223372036.854775807", INT64_MAX),
    ],
)
def test_to_nanos_is_exact(value, nanos):
    assert to_nanos(value) == nanos


@pytest.mark.parametrize(
    "text",
    ["0.0000000001", "1.1234567891", "1e-10", "0,0000000001"],
)
def test_more_than_nine_places_is_refused_not_rounded(text):
    with pytest.raises(MoneyError, match="more than 9 decimal places"):
        to_nanos(text, decimal_comma="," in text)


def test_many_places_beyond_decimal_precision_are_still_refused():
    # 28 decimal places: a Decimal context of 28 digits must not round this to exactly 1
    with pytest.raises(MoneyError, match="more than 9 decimal places"):
        to_nanos("1.0000000000000000000000000001")


def test_amount_beyond_int64_nanos_is_refused():
    with pytest.raises(MoneyError, match="too large"):
        to_nanos("9223372036.854775808")


@pytest.mark.parametrize("text", ["abc", "", "0.1.2", "1,2,3", "NaN", "Infinity", "-inf", "€5"])
def test_non_numbers_are_refused(text):
    with pytest.raises(MoneyError):
        to_nanos(text, decimal_comma=text == "1,2,3")


@pytest.mark.parametrize("value", [0.1, 1.0, 0.5, float("nan"), True])
def test_floats_and_bools_are_never_amounts(value):
    with pytest.raises(MoneyError, match="not a decimal number"):
        parse_decimal(value)
    with pytest.raises(MoneyError):
        to_nanos(value)


def test_money_error_is_a_value_error_so_pydantic_reports_it():
    assert issubclass(MoneyError, ValueError)


def test_nanos_to_decimal_keeps_nine_places():
    assert nanos_to_decimal(508_333_333) == Decimal("0.508333333")
    assert nanos_to_decimal(-1) == Decimal("-0.000000001")


# --- rounding --------------------------------------------------------------------------------

# numerators over a denominator of 10: tenths to be rounded to whole units
TENTHS = [25, 15, 5, 4, 6, 0, -4, -5, -6, -15, -25]


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        # half_up rounds halves away from zero
        ("half_up", [3, 2, 1, 0, 1, 0, 0, -1, -1, -2, -3]),
        # half_even rounds halves to the even neighbour
        ("half_even", [2, 2, 0, 0, 1, 0, 0, 0, -1, -2, -2]),
        # up is toward +infinity, down toward -infinity (documented)
        ("up", [3, 2, 1, 1, 1, 0, 0, 0, 0, -1, -2]),
        ("down", [2, 1, 0, 0, 0, 0, -1, -1, -1, -2, -3]),
    ],
)
def test_round_nanos_methods_on_positive_negative_and_exact_halves(method, expected):
    assert round_nanos(np.array(TENTHS, dtype=np.int64), 10, method).tolist() == expected


@pytest.mark.parametrize("method", ["half_up", "half_even", "up", "down"])
def test_round_nanos_leaves_exact_quotients_alone(method):
    num = np.array([120, -120, 0, 60 * 500_000_000], dtype=np.int64)
    assert round_nanos(num, 60, method).tolist() == [2, -2, 0, 500_000_000]


def test_round_nanos_takes_a_denominator_per_element():
    num = np.array([5, 5, 5], dtype=np.int64)
    den = np.array([10, 3, 1], dtype=np.int64)
    assert round_nanos(num, den, "half_up").tolist() == [1, 2, 5]


def test_round_nanos_refuses_an_unknown_method():
    with pytest.raises(MoneyError, match="unknown rounding method"):
        round_nanos(np.array([1]), 2, "bankers")


@given(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.integers(min_value=1, max_value=10**6),
    st.sampled_from(["half_up", "half_even", "up", "down"]),
)
def test_round_nanos_agrees_with_decimal_rounding(num, den, method):
    from rules.money import round_decimal

    expected = int(round_decimal(Decimal(num) / Decimal(den), 0, method))
    assert int(round_nanos(np.array([num], dtype=np.int64), den, method)[0]) == expected


@pytest.mark.parametrize(
    ("nanos", "currency", "method", "expected"),
    [
        (5_000_000, "EUR", "half_up", Decimal("0.01")),
        (5_000_000, "EUR", "half_even", Decimal("0.00")),
        (-5_000_000, "EUR", "half_up", Decimal("-0.01")),
        (500_000_000, "JPY", "half_even", Decimal("0")),
        (1_500_000_000, "JPY", "half_even", Decimal("2")),
        (1_234_500_000, "BHD", "half_up", Decimal("1.235")),
        (1_000_000, "EUR", "up", Decimal("0.01")),
        (-1_000_000, "EUR", "up", Decimal("0.00")),
    ],
)
def test_round_to_minor_uses_the_currency_minor_units(nanos, currency, method, expected):
    rounded = round_to_minor(nanos, currency, method)
    assert rounded == expected
    assert rounded.as_tuple().exponent == expected.as_tuple().exponent


def test_round_to_minor_refuses_an_unknown_currency():
    with pytest.raises(MoneyError, match="unknown currency 'XYZ'"):
        round_to_minor(1, "XYZ")


# --- Arrow decimals --------------------------------------------------------------------------

def test_nanos_to_arrow_is_decimal_38_9_with_exact_values():
    arr = nanos_to_arrow(np.array([1, -1, 508_333_333, INT64_MAX, INT64_MIN], dtype=np.int64))
    assert arr.type == pa.decimal128(38, 9)
    assert arr.to_pylist() == [
        Decimal("0.000000001"), Decimal("-0.000000001"), Decimal("0.508333333"),
        Decimal("9223372036.854775807"), Decimal("-9223372036.854775808"),
    ]


def test_nanos_to_arrow_marks_nulls_and_arrow_to_nanos_reads_them_as_zero():
    arr = nanos_to_arrow(np.array([10, -20, 30], dtype=np.int64), np.array([True, False, True]))
    assert arr.null_count == 1
    assert arr.to_pylist() == [Decimal("1E-8"), None, Decimal("3E-8")]
    assert arrow_to_nanos(arr).tolist() == [10, 0, 30]


def test_arrow_to_nanos_reads_slices_chunks_and_smaller_scales():
    arr = nanos_to_arrow(np.arange(-5, 5, dtype=np.int64))
    assert arrow_to_nanos(arr.slice(3, 4)).tolist() == [-2, -1, 0, 1]
    chunked = pa.chunked_array([arr.slice(0, 2), arr.slice(8, 2)])
    assert arrow_to_nanos(chunked).tolist() == [-5, -4, 3, 4]
    cents = pa.array([Decimal("1.25"), Decimal("-0.01")], pa.decimal128(10, 2))
    assert arrow_to_nanos(cents).tolist() == [1_250_000_000, -10_000_000]


def test_arrow_to_nanos_refuses_amounts_beyond_int64():
    big = pa.array([Decimal("9223372036.854775808")], pa.decimal128(38, 9))
    with pytest.raises(MoneyError, match="does not fit"):
        arrow_to_nanos(big)


@given(st.lists(st.integers(min_value=INT64_MIN, max_value=INT64_MAX), max_size=50))
def test_arrow_round_trip_over_int64(values):
    nanos = np.array(values, dtype=np.int64)
    arr = nanos_to_arrow(nanos)
    assert arr.to_pylist() == [nanos_to_decimal(v) for v in values]
    assert arrow_to_nanos(arr).tolist() == values


@given(
    st.lists(
        st.tuples(st.integers(min_value=INT64_MIN, max_value=INT64_MAX), st.booleans()),
        max_size=50,
    )
)
def test_arrow_round_trip_with_nulls(pairs):
    nanos = np.array([v for v, _ in pairs], dtype=np.int64)
    valid = np.array([ok for _, ok in pairs], dtype=bool)
    arr = nanos_to_arrow(nanos, valid)
    assert arr.null_count == int((~valid).sum())
    assert arr.to_pylist() == [nanos_to_decimal(v) if ok else None for v, ok in pairs]
    assert arrow_to_nanos(arr).tolist() == [v if ok else 0 for v, ok in pairs]
