"""Exact money: decimal parsing, the fixed internal scale, currencies and rounding.

Every amount inside ratecycle is an integer count of nanos (10^-9 of a currency unit).
Text is parsed with :class:`decimal.Decimal`; no binary float ever holds an amount.
Rounding happens only through :func:`round_nanos`, at the points the catalog declares.
"""

from __future__ import annotations

from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Decimal,
    InvalidOperation,
)
from typing import Literal

import numpy as np

SCALE = 9
NANOS = 10**SCALE
INT64_MAX = 2**63 - 1

RoundingMethod = Literal["half_up", "half_even", "up", "down"]
ROUNDING_METHODS: tuple[str, ...] = ("half_up", "half_even", "up", "down")

# ISO 4217 minor units of the currencies ratecycle knows. Extend here, nowhere else.
MINOR_UNITS: dict[str, int] = {
    "AED": 2, "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2,
    "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2,
    "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "NOK": 2,
    "NZD": 2, "OMR": 3, "PLN": 2, "RON": 2, "SEK": 2, "SGD": 2, "TND": 3, "TRY": 2,
    "USD": 2, "VND": 0, "XOF": 0, "ZAR": 2,
}


class MoneyError(ValueError):
    """A text that is not an exact decimal amount within the internal scale."""


def parse_decimal(text: str | int | Decimal, *, decimal_comma: bool = False) -> Decimal:
    """Parse an amount written as text ("0,1175" when ``decimal_comma``) into a Decimal."""
    if isinstance(text, Decimal):
        value = text
    elif isinstance(text, int) and not isinstance(text, bool):
        value = Decimal(text)
    elif isinstance(text, str):
        cleaned = text.strip()
        if decimal_comma:
            cleaned = cleaned.replace(".", "").replace(",", ".") if "," in cleaned else cleaned
        try:
            value = Decimal(cleaned)
        except InvalidOperation:
            raise MoneyError(f"{text!r} is not a decimal number") from None
    else:
        raise MoneyError(f"{text!r} is not a decimal number (write amounts as text)")
    if not value.is_finite():
        raise MoneyError(f"{text!r} is not a finite decimal number")
    return value


def to_nanos(value: str | int | Decimal, *, decimal_comma: bool = False) -> int:
    """Exact conversion to nanos; refuses more than 9 decimal places instead of rounding."""
    d = parse_decimal(value, decimal_comma=decimal_comma)
    # Integer arithmetic on the digits: Decimal.scaleb would round beyond 28 digits.
    sign, digits, exponent = d.as_tuple()
    coefficient = int("".join(map(str, digits)) or "0")
    shift = exponent + SCALE
    if shift >= 0:
        n = coefficient * 10**shift
    else:
        n, rest = divmod(coefficient, 10**-shift)
        if rest:
            raise MoneyError(f"{value!r} has more than {SCALE} decimal places")
    n = -n if sign else n
    if abs(n) > INT64_MAX:
        raise MoneyError(f"{value!r} is too large")
    return n


def nanos_to_decimal(n: int) -> Decimal:
    return Decimal(n).scaleb(-SCALE)


def minor_units(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise MoneyError(
            f"unknown currency {currency!r}; known: {', '.join(sorted(MINOR_UNITS))}"
        ) from None


_DECIMAL_MODES = {
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
    "up": ROUND_CEILING,
    "down": ROUND_FLOOR,
}


def round_decimal(value: Decimal, places: int, method: RoundingMethod = "half_up") -> Decimal:
    """Round a Decimal to ``places`` decimals. ``up``/``down`` are toward +/- infinity."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=_DECIMAL_MODES[method])


def round_nanos(
    numerator: np.ndarray, denominator: int | np.ndarray, method: RoundingMethod = "half_up"
) -> np.ndarray:
    """Integer division numerator/denominator rounded by ``method``, elementwise.

    This is the one rounding function of the rating core: ``rate * quantity / unit``
    reaches the internal scale here. Inputs are int64; the caller checks for overflow
    with :func:`check_product_fits`. ``half_up`` rounds halves away from zero.
    """
    num = np.asarray(numerator, dtype=np.int64)
    den = np.asarray(denominator, dtype=np.int64)
    q, r = np.divmod(num, den)  # floor division: r has the sign of den (> 0)
    if method == "down":
        return q
    if method == "up":
        return q + (r != 0)
    twice = 2 * r
    if method == "half_up":
        # floor-based: round half away from zero means half up for positives, down for negatives
        bump = (twice > den) | ((twice == den) & (num >= 0))
        return q + bump
    if method == "half_even":
        bump = (twice > den) | ((twice == den) & (q % 2 == 1))
        return q + bump
    raise MoneyError(f"unknown rounding method {method!r}; use one of {ROUNDING_METHODS}")


def check_product_fits(a_max: int, b_max: int, what: str) -> None:
    """Refuse a computation whose int64 product could overflow, naming what it was."""
    if a_max and b_max and abs(int(a_max)) * abs(int(b_max)) > INT64_MAX // 2:
        raise MoneyError(
            f"{what}: {a_max} x {b_max} would overflow exact 64-bit money arithmetic; "
            "split the usage or lower the quantity unit"
        )


def round_to_minor(nanos: int, currency: str, method: RoundingMethod = "half_up") -> Decimal:
    """Round an exact amount in nanos to the currency's minor unit."""
    return round_decimal(nanos_to_decimal(nanos), minor_units(currency), method)


DECIMAL_TYPE_ARGS = (38, SCALE)


def nanos_to_arrow(nanos: np.ndarray, valid: np.ndarray | None = None):
    """Exact int64 nanos -> Arrow decimal128(38, 9), by laying out the 128-bit integers."""
    import pyarrow as pa

    vals = np.ascontiguousarray(nanos, dtype=np.int64)
    wide = np.empty(2 * len(vals), dtype=np.int64)
    wide[0::2] = vals
    wide[1::2] = vals >> 63  # sign extension of the high word
    validity = None
    null_count = 0
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        null_count = int((~valid).sum())
        if null_count:
            validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.decimal128(*DECIMAL_TYPE_ARGS), len(vals), [validity, pa.py_buffer(wide)], null_count
    )


def arrow_to_nanos(array) -> np.ndarray:
    """Arrow decimal column of scale <= 9 -> int64 nanos (nulls become 0)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = pc.fill_null(array.cast(pa.decimal128(*DECIMAL_TYPE_ARGS)), 0)
    wide = np.frombuffer(array.buffers()[1], dtype=np.int64)
    wide = wide[2 * array.offset : 2 * (array.offset + len(array))]
    low, high = wide[0::2], wide[1::2]
    if not np.array_equal(high, low >> 63):
        raise MoneyError("an amount does not fit exact 64-bit nanos")
    return low.copy()
